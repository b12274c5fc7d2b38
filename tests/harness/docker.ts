// Docker side of the harness: is an engine reachable, and the local Envoy image.
// No registry is reachable from the test machines, so the image is built here: `docker import` of a tarball
// holding the pinned Envoy binary plus the glibc files `ldd` lists. ENVOY_IMAGE overrides it.
import { execFile, spawn, spawnSync } from "node:child_process";
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { envoyBinaryVersion, resolveEnvoyBinary } from "./envoy-bin.js";

const execFileP = promisify(execFile);
export const IMAGE_REPO = "envoy-resilience/envoy";
/** Where the binary sits in the image (the same place as in the official envoyproxy/envoy images). */
export const IMAGE_ENVOY_PATH = "/usr/local/bin/envoy";
const DEFAULT_SOCKET = "/var/run/docker.sock";

export interface DockerPing {
  ok: boolean;
  /** The engine address tried, e.g. unix:///var/run/docker.sock. */
  where: string;
  /** Why it is not reachable (when !ok). */
  reason?: string;
}

/** Asks the engine named by DOCKER_HOST (or the default socket) for /_ping. Never throws. */
export function pingDocker(timeoutMs = 2_000): Promise<DockerPing> {
  const host = process.env.DOCKER_HOST;
  const where = host || `unix://${DEFAULT_SOCKET}`;
  let target: { socketPath: string } | { host: string; port: number };
  if (where.startsWith("unix://")) {
    target = { socketPath: where.slice("unix://".length) };
  } else if (where.startsWith("tcp://") || where.startsWith("http://")) {
    const u = new URL(where.replace(/^tcp:/, "http:"));
    target = { host: u.hostname, port: Number(u.port || 2375) };
  } else {
    return Promise.resolve({ ok: false, where, reason: `DOCKER_HOST scheme not supported by the harness: ${where}` });
  }
  return new Promise((resolve) => {
    const req = httpRequest({ ...target, path: "/_ping", timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? { ok: true, where } : { ok: false, where, reason: `/_ping answered ${res.statusCode}` });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (e) => resolve({ ok: false, where, reason: e.message }));
    req.end();
  });
}

async function docker(args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP("docker", args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`docker ${args.join(" ")} failed: ${(err.stderr || err.message).trim()}`);
  }
}

async function imageExists(tag: string): Promise<boolean> {
  try {
    await docker(["image", "inspect", "--format", "{{.Id}}", tag]);
    return true;
  } catch {
    return false;
  }
}

/** Shared libraries and loader `ldd` lists for `bin` (absolute paths, as the loader will look them up). */
export function lddPaths(bin: string): string[] {
  const r = spawnSync("ldd", [bin], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ldd ${bin} failed: ${r.stderr || r.error}`);
  const paths: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) paths.push(m[1]);
  }
  if (!paths.some((p) => p.includes("ld-linux"))) throw new Error(`ldd ${bin} lists no dynamic loader:\n${r.stdout}`);
  return paths;
}

function run(cmd: string, args: string[], stdin?: NodeJS.ReadableStream): { done: Promise<void>; stdout: NodeJS.ReadableStream } {
  const child = spawn(cmd, args, { stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"] });
  if (stdin) stdin.pipe(child.stdin!);
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${stderr.trim()}`))));
  });
  return { done, stdout: child.stdout! };
}

async function buildImage(bin: string, tag: string, version: string): Promise<void> {
  const stage = mkdtempSync(join(tmpdir(), "envoy-image-"));
  try {
    const put = (hostPath: string, imagePath: string) => {
      const dest = join(stage, imagePath);
      mkdirSync(dirname(dest), { recursive: true });
      try {
        linkSync(realpathSync(hostPath), dest); // the binary is ~100 MB: link when on the same filesystem
      } catch {
        copyFileSync(realpathSync(hostPath), dest);
      }
    };
    put(bin, IMAGE_ENVOY_PATH);
    for (const lib of lddPaths(bin)) put(lib, lib);
    mkdirSync(join(stage, "etc/envoy"), { recursive: true });
    mkdirSync(join(stage, "tmp"), { recursive: true, mode: 0o1777 });
    const tar = run("tar", ["-C", stage, "-cf", "-", "."]);
    const imp = run(
      "docker",
      [
        "import",
        "--change", `ENTRYPOINT ["${IMAGE_ENVOY_PATH}"]`,
        "--change", `LABEL org.opencontainers.image.version=${version}`,
        "-", tag,
      ],
      tar.stdout,
    );
    await Promise.all([tar.done, imp.done]);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

let image: Promise<string> | undefined;

/** The image container mode runs: $ENVOY_IMAGE, else envoy-resilience/envoy:<version>, built once if missing. */
export function ensureEnvoyImage(): Promise<string> {
  const fromEnv = process.env.ENVOY_IMAGE;
  if (fromEnv) return Promise.resolve(fromEnv);
  image ??= (async () => {
    const bin = resolveEnvoyBinary();
    const version = envoyBinaryVersion(bin);
    const tag = `${IMAGE_REPO}:${version}`;
    if (!(await imageExists(tag))) await buildImage(bin, tag, version);
    return tag;
  })();
  image.catch(() => (image = undefined)); // a failed build may be retried
  return image;
}

/** True when the engine still knows a container with this id (running or not). */
export async function containerExists(id: string): Promise<boolean> {
  const out = await docker(["ps", "-a", "--no-trunc", "--filter", `id=${id}`, "--format", "{{.ID}}"]);
  return out.trim() !== "";
}

/** Synchronous forced removal, for process-exit cleanup. */
export function removeContainerSync(id: string): void {
  spawnSync("docker", ["rm", "-f", id], { stdio: "ignore" });
}
