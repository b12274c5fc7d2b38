// Which Envoy the tests run: $ENVOY_BIN, else the binary `npm run setup` put in .venv.
// The logic lives in build/setup.mjs so setup and tests can never disagree.
export {
  envoyBinaryVersion,
  envoyVersionLine,
  pinnedEnvoyVersion,
  projectRoot,
  resolveEnvoyBinary,
} from "../../build/setup.mjs";
