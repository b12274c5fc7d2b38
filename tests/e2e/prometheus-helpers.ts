// A real Prometheus server (Debian `prometheus`) for e2e tests: unprivileged, on 127.0.0.1 only, its own temp
// storage, stopped by its pid. Queries go to the HTTP API (/api/v1/*).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts, request, waitFor, notYet } from "../harness/index.js";

/** One series of an instant vector as the API returns it. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Prometheus {
  readonly url: string;
  /** Instant query; throws on an API error (bad expression, say) with Prometheus's message. */
  query(expr: string): Promise<PromSample[]>;
  /** Any GET under /api/v1, parsed `data`. */
  api<T = unknown>(path: string): Promise<T>;
  logs(): string;
  stop(): Promise<void>;
}

export interface StartPrometheusOptions {
  /** host:port targets scraped at metrics_path /stats/prometheus (Envoy admin). */
  targets: string[];
  /** Absolute paths of rule files to load and evaluate. */
  ruleFiles?: string[];
  /** Scrape and evaluation interval. Default "1s". */
  interval?: string;
}

/** Starts Prometheus and resolves once /-/ready answers 200. */
export async function startPrometheus(opts: StartPrometheusOptions): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), "prometheus-"));
  const [port] = await freePorts(1);
  const interval = opts.interval ?? "1s";
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: opts.ruleFiles ?? [],
    scrape_configs: [{ job_name: "envoy", metrics_path: "/stats/prometheus", static_configs: [{ targets: opts.targets }] }],
  };
  // JSON is YAML: no serializer needed.
  writeFileSync(join(dir, "prometheus.yaml"), JSON.stringify(config, null, 2));
  const url = `http://127.0.0.1:${port}`;
  let log = "";
  const child: ChildProcess = spawn("prometheus", [
    `--config.file=${join(dir, "prometheus.yaml")}`, `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (c) => (log += c));
  child.stderr!.on("data", (c) => (log += c));
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) => child.once("exit", (code) => { exited = code; resolve(); }));
  child.once("error", (e) => { log += String(e); exited = -1; });

  const stop = async () => {
    if (exited === undefined && child.pid !== undefined) {
      child.kill("SIGTERM");
      await exit;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // An exit ends the wait at once (a thrown probe would be retried until the timeout).
    const ready = await waitFor("Prometheus /-/ready, or its exit", async () => {
      if (exited !== undefined) return false;
      return (await request(`${url}/-/ready`, { timeoutMs: 2_000 })).status === 200 ? true : notYet();
    }, { timeoutMs: 30_000 });
    if (!ready) throw new Error(`prometheus exited (${exited}) before it was ready: ${log.slice(-2000)}`);
  } catch (e) {
    await stop();
    throw e;
  }

  const api = async <T>(path: string): Promise<T> => {
    const res = await request(`${url}/api/v1/${path}`);
    const body = res.json<{ status: string; data: T; error?: string }>();
    if (body.status !== "success") throw new Error(`Prometheus ${path}: ${body.error ?? res.body.slice(0, 300)}`);
    return body.data;
  };
  return {
    url,
    api,
    async query(expr) {
      const data = await api<{ resultType: string; result: PromSample[] }>(`query?query=${encodeURIComponent(expr)}`);
      if (data.resultType !== "vector") throw new Error(`${expr}: a ${data.resultType}, not an instant vector`);
      return data.result;
    },
    logs: () => log,
    stop,
  };
}
