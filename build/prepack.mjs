// `npm pack`'s prepack step: the package ships the release modules as built (`npm run build` makes them; building
// takes minutes, so this only checks they are there and current) and the emulator and harness compiled to dist/.
import { existsSync, rmSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { MODULES } from "../cli/validate.mjs";

const root = new URL("..", import.meta.url).pathname;
const missing = MODULES.filter((m) => !existsSync(join(root, "build", `${m}.wasm`)));
if (missing.length > 0) {
  console.error(`prepack: no build/${missing[0]}.wasm (missing: ${missing.join(", ")}); run \`npm run build\` first`);
  process.exit(1);
}
rmSync(join(root, "dist"), { recursive: true, force: true });
const tsc = spawnSync(join(root, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.pkg.json"], { cwd: root, stdio: "inherit" });
if (tsc.status !== 0) {
  console.error("prepack: compiling the emulator and harness (tsconfig.pkg.json) failed");
  process.exit(1);
}
if (!statSync(join(root, "dist", "emulator", "index.js")).isFile()) process.exit(1);
