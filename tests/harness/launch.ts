// Starting one Envoy: the options and their checks, the bootstrap rewrite (mutate, ports, files), the command line,
// the wait for /ready, and a retry with fresh ports when one was taken meanwhile.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { loadBootstrap, portsNeeded, rewriteBootstrap, type Bootstrap, type PortLike } from "./config.js";
import { POLL_MS, startContainer } from "./container.js";
import { request } from "./http.js";
import { envoyBinaryVersion, resolveEnvoyBinary } from "./envoy-bin.js";
import { freePorts } from "./ports.js";
import { liveTmp, removeTmp, startProcess, type Runner } from "./runner.js";
import { notYet, waitFor, WaitTimeout, type NotYet } from "./wait.js";

export type EnvoyMode = "process" | "container";

export interface StartEnvoyOptions {
  /** Bootstrap YAML/JSON file, relative to the project root or absolute. */
  config: string;
  /** Static cluster name → upstream(s) (port or {port}); its endpoints become 127.0.0.1:<port> each. */
  clusters?: Record<string, PortLike | PortLike[]>;
  /** Module name → .wasm path; replaces vm_config.code.local.filename whose basename is `<name>.wasm`. */
  wasm?: Record<string, string>;
  /** Worker threads (--concurrency). Default 2. */
  concurrency?: number;
  /** Default: $ENVOY_MODE, else "process". */
  mode?: EnvoyMode;
  /** -l. Default "info". */
  logLevel?: LogLevel;
  /** --component-log-level, e.g. "wasm:debug,router:debug". */
  componentLogLevel?: string;
  /** Edits the parsed bootstrap (as shipped, before ports and files are rewritten). */
  mutate?: (config: Bootstrap) => void;
  /** Extra environment for Envoy (e.g. for vm_config.environment_variables.host_env_keys). */
  env?: Record<string, string>;
  /** Extra command-line arguments. */
  args?: string[];
  /** Absolute host folders Envoy reads or watches by path (SDS files): container mode bind-mounts each, read-only,
   *  at the same path, so later changes reach Envoy; process mode reads them in place. */
  mounts?: string[];
  /** How long to wait for /ready = LIVE (or, expecting failure, for the exit). Default 60 s. */
  startTimeoutMs?: number;
}

export type LogLevel = "trace" | "debug" | "info" | "warning" | "warn" | "error" | "critical" | "off";
const LEVELS: LogLevel[] = ["trace", "debug", "info", "warning", "warn", "error", "critical", "off"];
const BIND_RETRIES = 3;

function defaultMode(): EnvoyMode {
  const m = process.env.ENVOY_MODE ?? "process";
  if (m !== "process" && m !== "container") throw new Error(`ENVOY_MODE must be "process" or "container", got "${m}"`);
  return m;
}

function validate(opts: StartEnvoyOptions): Required<Pick<StartEnvoyOptions, "concurrency" | "logLevel" | "mode" | "startTimeoutMs">> {
  if (!opts || typeof opts.config !== "string" || opts.config === "") throw new Error("startEnvoy: `config` (a bootstrap file path) is required");
  const concurrency = opts.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`startEnvoy: concurrency must be an integer >= 1, got ${opts.concurrency}`);
  const logLevel = opts.logLevel ?? "info";
  if (!LEVELS.includes(logLevel)) throw new Error(`startEnvoy: logLevel must be one of ${LEVELS.join(", ")}, got "${logLevel}"`);
  const mode = opts.mode ?? defaultMode();
  if (mode !== "process" && mode !== "container") throw new Error(`startEnvoy: mode must be "process" or "container", got "${mode}"`);
  for (const m of opts.mounts ?? []) {
    if (!isAbsolute(m) || !existsSync(m)) throw new Error(`startEnvoy: mounts must be absolute existing host folders, got "${m}"`);
  }
  return { concurrency, logLevel, mode, startTimeoutMs: opts.startTimeoutMs ?? 60_000 };
}


export interface Launch {
  runner: Runner;
  outcome: "ready" | "exited" | "timeout";
  exitCode?: number;
  tmp: string;
  configPath: string;
  config: Bootstrap;
  adminPort: number;
  listeners: Array<{ name: string; port: number }>;
  mode: EnvoyMode;
}

async function waitReady(runner: Runner, adminPort: number, deadline: number): Promise<Pick<Launch, "outcome" | "exitCode">> {
  const probe = async (): Promise<Pick<Launch, "outcome" | "exitCode"> | NotYet> => {
    const code = await runner.exitCode();
    if (code !== undefined) return { outcome: "exited", exitCode: code };
    const res = await request(`http://127.0.0.1:${adminPort}/ready`, { timeoutMs: 2_000 }); // throws until admin listens
    return res.status === 200 && res.body.trim() === "LIVE" ? { outcome: "ready" } : notYet(`/ready ${res.status} ${res.body.trim()}`);
  };
  try {
    return await waitFor("Envoy admin /ready = LIVE, or its exit", probe, { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: POLL_MS });
  } catch (e) {
    if (e instanceof WaitTimeout) return { outcome: "timeout" };
    throw e;
  }
}

function envoyArgs(opts: StartEnvoyOptions, v: ReturnType<typeof validate>): string[] {
  let component = opts.componentLogLevel;
  // Container readiness needs the main loop's info line even when the caller wants a quieter log.
  if (v.mode === "container" && LEVELS.indexOf(v.logLevel) > LEVELS.indexOf("info") && !/(^|,)main:/.test(component ?? "")) {
    component = component ? `${component},main:info` : "main:info";
  }
  return [
    "--concurrency", String(v.concurrency),
    "-l", v.logLevel,
    ...(component ? ["--component-log-level", component] : []),
    // No hot restart: no shared memory or domain socket to collide on, so any number of Envoys can run at once.
    "--disable-hot-restart",
    ...(opts.args ?? []),
  ];
}

let processEnvoyMinor: number | undefined;

/**
 * What the running Envoy cannot parse in a shipped bootstrap, left out so the suites still run on every release of the
 * matrix: trace tags built from a format string (`custom_tags[].value`) exist from Envoy 1.37 on (README, Envoy version).
 */
function adaptToEnvoyVersion(config: Bootstrap): void {
  processEnvoyMinor ??= Number(envoyBinaryVersion(resolveEnvoyBinary()).split(".")[1]);
  if (processEnvoyMinor >= 37) return;
  for (const listener of config.static_resources?.listeners ?? []) {
    for (const chain of listener.filter_chains ?? []) {
      for (const filter of chain.filters ?? []) {
        const tracing = filter.typed_config?.tracing;
        if (Array.isArray(tracing?.custom_tags)) tracing.custom_tags = tracing.custom_tags.filter((t: Bootstrap) => t.value === undefined);
      }
    }
  }
}

export async function launch(opts: StartEnvoyOptions): Promise<Launch> {
  const v = validate(opts);
  for (let attempt = 1; ; attempt++) {
    const config = loadBootstrap(opts.config);
    opts.mutate?.(config);
    if (v.mode === "process") adaptToEnvoyVersion(config);
    const rw = rewriteBootstrap(
      config,
      { clusters: opts.clusters, wasm: opts.wasm, target: v.mode === "process" ? "host" : "container" },
      await freePorts(portsNeeded(config)),
    );
    const tmp = mkdtempSync(join(tmpdir(), "envoy-harness-"));
    liveTmp.add(tmp);
    const configPath = join(tmp, "envoy.json");
    writeFileSync(configPath, JSON.stringify(rw.config, null, 2));
    const args = envoyArgs(opts, v);
    const deadline = Date.now() + v.startTimeoutMs;
    let runner: Runner;
    try {
      runner =
        v.mode === "process"
          ? startProcess(configPath, args, opts.env)
          : await startContainer(configPath, rw.files, opts.mounts ?? [], args, opts.env, v.startTimeoutMs);
    } catch (e) {
      removeTmp(tmp);
      throw e;
    }
    const result = await waitReady(runner, rw.adminPort, deadline);
    const launched: Launch = { runner, ...result, tmp, configPath, config: rw.config, adminPort: rw.adminPort, listeners: rw.listeners, mode: v.mode };
    // A port taken between our probe and Envoy's bind: try again with fresh ports.
    if (result.outcome === "exited" && attempt < BIND_RETRIES && /[Aa]ddress already in use/.test(runner.logs.all())) {
      await cleanup(launched);
      continue;
    }
    return launched;
  }
}

export async function cleanup(l: Launch): Promise<void> {
  try {
    await l.runner.stop();
  } finally {
    removeTmp(l.tmp);
  }
}

export function describe(l: Launch, opts: StartEnvoyOptions): string {
  const where = l.runner.pid !== undefined ? `pid ${l.runner.pid}` : `container ${l.runner.containerId?.slice(0, 12)}`;
  return `Envoy (${l.mode} mode, ${where}, config ${opts.config})`;
}
