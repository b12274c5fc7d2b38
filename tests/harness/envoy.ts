// Runs a real Envoy for a test, as a child process or as a container (testcontainers, host network),
// behind one interface. See startEnvoy() for the options and the Envoy class for what a test can ask.
//
//   shipped bootstrap ──loadBootstrap──▶ mutate() ──rewriteBootstrap──▶ <tmp>/envoy.json ──▶ envoy -c ...
//                                         (fixed ports → free ports, clusters → upstreams, files → absolute/copied)
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants as osConstants, tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { loadBootstrap, portsNeeded, rewriteBootstrap, type Bootstrap, type PortLike, CONTAINER_CONFIG_DIR } from "./config.js";
import { ensureEnvoyImage, IMAGE_ENVOY_PATH, pingDocker, removeContainerSync } from "./docker.js";
import { resolveEnvoyBinary } from "./envoy-bin.js";
import { request, type HttpResponse } from "./http.js";
import { LogBuffer } from "./log-buffer.js";
import { freePorts } from "./ports.js";
import { exactStatFilter, flattenStats, parsePrometheus, seriesValue, type PromSeries, type StatsJson } from "./stats.js";
import { notYet, waitFor, waitUntil, WaitTimeout, type Accept, type NotYet, type WaitOptions } from "./wait.js";

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
const READY_LINE = "starting main dispatch loop";
const POLL_MS = 100;
const STOP_GRACE_MS = 10_000;
const BIND_RETRIES = 3;

/** A started runtime (process or container), as the rest of the harness sees it. */
interface Runner {
  readonly logs: LogBuffer;
  readonly pid?: number;
  readonly containerId?: string;
  /** Exit status once the process/container has exited, undefined while it runs. */
  exitCode(): Promise<number | undefined>;
  /** Ends it and removes what it left (container). Idempotent. */
  stop(): Promise<void>;
}

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

// ---- cleanup of anything a crashed test leaves behind --------------------------------------------------------
const live = new Set<Runner>();
const liveTmp = new Set<string>();
let exitHookInstalled = false;
function track(r: Runner): void {
  live.add(r);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    if (!process.env.ENVOY_KEEP_TMP) for (const dir of liveTmp) rmSync(dir, { recursive: true, force: true });
    for (const runner of live) {
      if (runner.pid !== undefined) {
        try {
          process.kill(runner.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
      if (runner.containerId) removeContainerSync(runner.containerId);
    }
  });
}

// ---- process mode ---------------------------------------------------------------------------------------------
function startProcess(configPath: string, args: string[], env: Record<string, string> | undefined): Runner {
  const bin = resolveEnvoyBinary();
  const logs = new LogBuffer();
  const child: ChildProcess = spawn(bin, ["-c", configPath, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let exit: number | undefined;
  const exited = new Promise<void>((resolve) => {
    // "close", not "exit": by then stdout and stderr are drained, so the log is complete.
    child.on("close", (code, signal) => {
      exit = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      resolve();
    });
    child.on("error", (e) => {
      logs.append(`harness: cannot run ${bin}: ${e.message}\n`);
      exit = 127;
      resolve();
    });
  });
  child.stdout!.on("data", (d) => logs.append(d));
  child.stderr!.on("data", (d) => logs.append(d));
  // A forgotten Envoy must not keep the test process alive; the exit hook below kills it.
  child.unref();
  for (const pipe of [child.stdout, child.stderr]) (pipe as unknown as { unref?: () => void }).unref?.();
  const runner: Runner = {
    logs,
    pid: child.pid,
    exitCode: async () => exit,
    async stop() {
      if (exit === undefined) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS); // a grace deadline, not a wait
        await exited;
        clearTimeout(timer);
      }
      live.delete(runner);
    },
  };
  track(runner);
  return runner;
}

// ---- container mode -------------------------------------------------------------------------------------------
async function startContainer(
  configPath: string,
  files: Array<{ source: string; target: string }>,
  mounts: string[],
  args: string[],
  env: Record<string, string> | undefined,
  timeoutMs: number,
): Promise<Runner> {
  const ping = await pingDocker();
  if (!ping.ok) {
    throw new Error(`container mode: no Docker engine at ${ping.where} (${ping.reason}); run \`bash build/docker.sh start\` and export the DOCKER_HOST it prints`);
  }
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "127.0.0.1";
  const { GenericContainer, getContainerRuntimeClient } = await import("testcontainers");
  const image = await ensureEnvoyImage();
  const logs = new LogBuffer();
  const containerConfig = `${CONTAINER_CONFIG_DIR}/envoy.json`;
  let dockerContainer: { id: string; inspect(): Promise<{ State: { Running: boolean; ExitCode: number; FinishedAt?: string; StartedAt?: string } }> } | undefined;

  let logsEnded: () => void;
  const logsDone = new Promise<void>((resolve) => (logsEnded = resolve));
  const inspectExit = async (): Promise<number | undefined> => {
    if (!dockerContainer) return undefined;
    const info = await dockerContainer.inspect();
    if (info.State.Running) return undefined;
    await Promise.race([logsDone, sleep(2_000)]); // not a fixed wait: the log stream's end, capped at 2 s
    return info.State.ExitCode;
  };

  // Host networking means no mapped port for an HTTP wait: wait for Envoy's own "ready to serve" log line,
  // or for the container to exit (a refused config), and let the caller look at /ready or the exit code.
  const bootWait = {
    timeout: timeoutMs,
    withStartupTimeout(ms: number) {
      this.timeout = ms;
      return this;
    },
    isStartupTimeoutSet: () => true,
    getStartupTimeout() {
      return this.timeout;
    },
    async waitUntilReady(container: NonNullable<typeof dockerContainer>) {
      dockerContainer = container;
      // Ready line or exit, whichever comes first; the caller tells them apart.
      await waitFor(`"${READY_LINE}" in the container log, or its exit`, async () =>
        logs.find(READY_LINE) !== undefined || (await inspectExit()) !== undefined ? true : notYet(logs.tail(3)),
        { timeoutMs: this.timeout, intervalMs: POLL_MS });
    },
  };

  let started: Awaited<ReturnType<InstanceType<typeof GenericContainer>["start"]>>;
  try {
    started = await new GenericContainer(image)
      .withNetworkMode("host")
      .withEntrypoint([IMAGE_ENVOY_PATH])
      .withCommand(["-c", containerConfig, ...args])
      .withEnvironment(env ?? {})
      .withLabels({ "envoy-resilience.harness": "true" })
      .withCopyFilesToContainer([{ source: configPath, target: containerConfig }, ...files])
      .withBindMounts(mounts.map((m) => ({ source: m, target: m, mode: "ro" as const })))
      .withLogConsumer((stream) => {
        stream.on("data", (d: string | Buffer) => logs.append(d));
        stream.on("end", () => logsEnded());
      })
      .withWaitStrategy(bootWait as never)
      .withStartupTimeout(timeoutMs)
      .start();
  } catch (e) {
    throw new Error(`container mode: starting ${image} failed: ${(e as Error).message}\nlast log lines:\n${logs.tail()}`);
  }
  const id = started.getId();
  const client = await getContainerRuntimeClient();
  dockerContainer ??= client.container.getById(id) as unknown as NonNullable<typeof dockerContainer>;
  let stopped = false;
  const runner: Runner = {
    logs,
    containerId: id,
    exitCode: inspectExit,
    async stop() {
      if (stopped) return;
      stopped = true;
      await started.stop({ timeout: STOP_GRACE_MS, remove: true });
      live.delete(runner);
    },
  };
  track(runner);
  return runner;
}

// ---- shared start logic ---------------------------------------------------------------------------------------
/** Only to cap a wait on an event (Promise.race); waits on conditions use waitFor. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Launch {
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

async function launch(opts: StartEnvoyOptions): Promise<Launch> {
  const v = validate(opts);
  for (let attempt = 1; ; attempt++) {
    const config = loadBootstrap(opts.config);
    opts.mutate?.(config);
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

async function cleanup(l: Launch): Promise<void> {
  try {
    await l.runner.stop();
  } finally {
    removeTmp(l.tmp);
  }
}

function removeTmp(dir: string): void {
  liveTmp.delete(dir);
  if (!process.env.ENVOY_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
}

function describe(l: Launch, opts: StartEnvoyOptions): string {
  const where = l.runner.pid !== undefined ? `pid ${l.runner.pid}` : `container ${l.runner.containerId?.slice(0, 12)}`;
  return `Envoy (${l.mode} mode, ${where}, config ${opts.config})`;
}

/** Starts Envoy and resolves once admin /ready says LIVE. Throws with Envoy's log tail if it does not get there. */
export async function startEnvoy(opts: StartEnvoyOptions): Promise<Envoy> {
  const l = await launch(opts);
  if (l.outcome === "ready") return new Envoy(l);
  const what = describe(l, opts);
  const tail = l.runner.logs.tail(60);
  await cleanup(l);
  const why = l.outcome === "exited" ? `exited with status ${l.exitCode} before it was ready` : `was not ready within ${opts.startTimeoutMs ?? 60_000} ms`;
  throw new Error(`${what} ${why}. Last log lines:\n${tail}`);
}

export interface EnvoyFailure {
  exitCode: number;
  log: string;
}

/** For configs Envoy must refuse: resolves with the exit status and the whole log; throws if Envoy becomes LIVE. */
export async function startEnvoyExpectFailure(opts: StartEnvoyOptions): Promise<EnvoyFailure> {
  const l = await launch(opts);
  const log = l.runner.logs.all();
  const what = describe(l, opts);
  await cleanup(l);
  if (l.outcome === "exited") return { exitCode: l.exitCode!, log };
  if (l.outcome === "ready") throw new Error(`${what} accepted the config and became LIVE; expected it to refuse. Log tail:\n${l.runner.logs.tail()}`);
  throw new Error(`${what} neither became LIVE nor exited within ${opts.startTimeoutMs ?? 60_000} ms. Log tail:\n${l.runner.logs.tail()}`);
}

/** A running Envoy. Stop it with stop() (or `await using`). */
export class Envoy {
  readonly mode: EnvoyMode;
  readonly adminPort: number;
  /** http://127.0.0.1:<admin port> */
  readonly adminUrl: string;
  /** Listener name → port, in config order. */
  readonly listeners: ReadonlyArray<{ name: string; port: number }>;
  /** The bootstrap Envoy runs (after rewriting). */
  readonly config: Bootstrap;
  /** Host path of that bootstrap (gone after stop unless ENVOY_KEEP_TMP is set). */
  readonly configPath: string;
  /** Process mode: Envoy's pid. */
  readonly pid?: number;
  /** Container mode: the container id. */
  readonly containerId?: string;
  private readonly launch: Launch;
  private stopped?: Promise<void>;

  constructor(l: Launch) {
    this.launch = l;
    this.mode = l.mode;
    this.adminPort = l.adminPort;
    this.adminUrl = `http://127.0.0.1:${l.adminPort}`;
    this.listeners = l.listeners;
    this.config = l.config;
    this.configPath = l.configPath;
    this.pid = l.runner.pid;
    this.containerId = l.runner.containerId;
  }

  /** Port of the named listener (default: the first one). */
  port(listener?: string): number {
    const found = listener === undefined ? this.listeners[0] : this.listeners.find((l) => l.name === listener);
    if (!found) {
      throw new Error(`no listener ${listener === undefined ? "at all" : `named "${listener}"`} (listeners: ${this.listeners.map((l) => l.name).join(", ") || "none"})`);
    }
    return found.port;
  }

  /** http://127.0.0.1:<port> of the named listener (default: the first one). */
  url(listener?: string): string {
    return `http://127.0.0.1:${this.port(listener)}`;
  }

  /** Any admin endpoint, e.g. admin("/reset_counters", {method: "POST"}). */
  admin(path: string, opts: { method?: string } = {}): Promise<HttpResponse> {
    return request(`${this.adminUrl}${path.startsWith("/") ? path : `/${path}`}`, { method: opts.method ?? "GET" });
  }

  private async adminOk(path: string): Promise<HttpResponse> {
    const res = await this.admin(path);
    if (res.status !== 200) throw new Error(`admin ${path} answered ${res.status}: ${res.body.slice(0, 300)}`);
    return res;
  }

  /** /stats?format=json as Envoy returns it. `filter` is an RE2 pattern on stat names. */
  async statsJson(filter?: string): Promise<StatsJson> {
    const q = filter === undefined ? "" : `&filter=${encodeURIComponent(filter)}`;
    return (await this.adminOk(`/stats?format=json${q}`)).json<StatsJson>();
  }

  /** Counters and gauges by name (histograms left out). `filter` is an RE2 pattern on stat names. */
  async stats(filter?: string): Promise<Record<string, number>> {
    return flattenStats(await this.statsJson(filter));
  }

  /** The counter or gauge named exactly `name`, or undefined if Envoy has no such stat. */
  async stat(name: string): Promise<number | undefined> {
    return (await this.stats(exactStatFilter(name)))[name];
  }

  /**
   * Polls stat(name) until `accept` holds (a number means "at least": a counter reaching it); resolves with the value.
   * `opts` may be a timeout in ms (older callers) or WaitOptions. Rejects with the last value seen.
   */
  waitForStat(name: string, accept: Accept<number | undefined>, opts: number | WaitOptions = {}): Promise<number | undefined> {
    return waitUntil(`stat ${name}`, () => this.stat(name), accept, typeof opts === "number" ? { timeoutMs: opts } : opts);
  }

  /**
   * Polls /stats/prometheus until the one series `name` with `labels` satisfies `accept` (a number: at least that);
   * an absent series reads as undefined. Resolves with the value.
   */
  waitForSeries(name: string, labels: Record<string, string>, accept: Accept<number | undefined>, opts: WaitOptions = {}): Promise<number | undefined> {
    return waitUntil(`series ${name}${JSON.stringify(labels)}`, async () => seriesValue(await this.promSeries(), name, labels), accept, opts);
  }

  /** /stats/prometheus text. */
  async prometheus(): Promise<string> {
    return (await this.adminOk("/stats/prometheus")).body;
  }

  /** /stats/prometheus parsed into series. */
  async promSeries(): Promise<PromSeries[]> {
    return parsePrometheus(await this.prometheus());
  }

  /** Everything Envoy has logged so far (stdout and stderr). */
  logs(): string {
    return this.launch.runner.logs.all();
  }

  /** Characters logged so far; pass as `since` to waitForLog to ignore earlier lines. */
  logOffset(): number {
    return this.launch.runner.logs.length;
  }

  /** Resolves with the first log line matching `pattern` (after `since`); rejects after timeoutMs with the tail. */
  waitForLog(pattern: string | RegExp, opts: { timeoutMs?: number; since?: number } = {}): Promise<string> {
    return this.launch.runner.logs.waitFor(pattern, opts);
  }

  /** Exit status if Envoy has exited on its own, undefined while it runs. */
  exitCode(): Promise<number | undefined> {
    return this.launch.runner.exitCode();
  }

  /** SIGTERM (SIGKILL after 10 s), then removes the temp dir and, in container mode, the container. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= cleanup(this.launch);
    return this.stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
