// `npm run oci`: packages every build/<name>.wasm as an OCI image Istio's WasmPlugin can pull
// (`url: oci://<your registry>/resilience-filters/<name>:<version>`): one layer holding `plugin.wasm`, Istio's
// "compat" image layout. Built with `docker import` (no base image, no registry needed); push with your own tooling.
// Exported for the tests: ociImages() builds them and returns their tags.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(import.meta.url), "..", "..");
export const OCI_REPO = "resilience-filters";

/** The modules to package: every filter's release build. */
export function modules() {
  const names = readdirSync(join(root, "filters")).filter((n) => existsSync(join(root, "filters", n, "index.ts"))).sort();
  const missing = names.filter((n) => !existsSync(join(root, "build", `${n}.wasm`)));
  if (missing.length) throw new Error(`oci: build/${missing[0]}.wasm is missing: run \`npm run build\` first`);
  return names;
}

function version() {
  return JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
}

/** Builds resilience-filters/<name>:<version> for every module; returns the tags. */
export function ociImages() {
  if (spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" }).status !== 0) {
    throw new Error("oci: no Docker engine answers (set DOCKER_HOST, or `bash build/docker.sh start`)");
  }
  const tags = [];
  for (const name of modules()) {
    const stage = mkdtempSync(join(tmpdir(), "oci-"));
    try {
      copyFileSync(join(root, "build", `${name}.wasm`), join(stage, "plugin.wasm"));
      const tar = spawnSync("tar", ["-C", stage, "--owner=0", "--group=0", "--mode=0644", "-cf", "-", "plugin.wasm"]);
      if (tar.status !== 0) throw new Error(`oci: tar failed: ${tar.stderr}`);
      const tag = `${OCI_REPO}/${name}:${version()}`;
      const imp = spawnSync("docker", [
        "import",
        "--change", `LABEL org.opencontainers.image.title=${name}`,
        "--change", `LABEL org.opencontainers.image.version=${version()}`,
        "-", tag,
      ], { input: tar.stdout, encoding: "buffer" });
      if (imp.status !== 0) throw new Error(`oci: docker import ${tag} failed: ${imp.stderr}`);
      tags.push(tag);
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  }
  return tags;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    for (const tag of ociImages()) console.log(tag);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
