// Runs a real Envoy for a test, as a child process or as a container (testcontainers, host network), behind one
// interface: startEnvoy() and the Envoy class, whose admin and stats readers are what a test can ask. Options: launch.ts.
//
//   shipped bootstrap ──loadBootstrap──▶ mutate() ──rewriteBootstrap──▶ <tmp>/envoy.json ──▶ envoy -c ...
//                                         (fixed ports → free ports, clusters → upstreams, files → absolute/copied)
import { request, type HttpResponse } from "./http.js";
import { cleanup, describe, launch, type EnvoyMode, type Launch, type StartEnvoyOptions } from "./launch.js";
import { exactStatFilter, flattenStats, parsePrometheus, seriesValue, type PromSeries, type StatsJson } from "./stats.js";
import { waitUntil, type Accept, type WaitOptions } from "./wait.js";
import type { Bootstrap } from "./config.js";

export type { EnvoyMode, LogLevel, StartEnvoyOptions } from "./launch.js";

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
