// Shared pieces of the cost benchmarks: Envoy pinned to core 0 with --concurrency 1, wrk pinned to core 1,
// keep-alive connections, rounds alternating between variants, medians reported, ratios within one run.
import { spawnSync } from "node:child_process";
import { startEnvoy, type Bootstrap, type Envoy, type StartEnvoyOptions } from "../harness/index.js";

export interface Variant {
  name: string;
  /** Options for startEnvoy (concurrency is forced to 1). */
  envoy: StartEnvoyOptions;
  /** Extra wrk arguments, e.g. ["-H", "Host: service-a"] (spelled "Host", or wrk adds its own as well). */
  wrkArgs?: string[];
}

export interface BenchOptions {
  rounds: number;
  seconds: number;
  connections: number;
}

export const DEFAULT_BENCH: BenchOptions = {
  rounds: Number(process.env.BENCH_ROUNDS ?? 3),
  seconds: Number(process.env.BENCH_SECONDS ?? 5),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 16),
};

function need(tool: string): void {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} not found: run \`npm run setup\``);
}

/** Runs wrk pinned to core 1; returns requests per second. */
export function wrk(url: string, opts: BenchOptions, extra: string[] = []): { rps: number; p50us: number } {
  const r = spawnSync("taskset", ["-c", "1", "wrk", "-t1", `-c${opts.connections}`, `-d${opts.seconds}s`, "--latency", ...extra, url], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const p50 = /50%\s+([\d.]+)(us|ms|s)/.exec(r.stdout);
  const scale = p50 ? { us: 1, ms: 1000, s: 1e6 }[p50[2] as "us" | "ms" | "s"] : NaN;
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} non-2xx responses at ${url}`);
  return { rps, p50us: p50 ? Number(p50[1]) * scale : NaN };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Starts Envoy as a process with one worker, every thread pinned to core 0 (wrk gets core 1). */
export async function startPinnedEnvoy(opts: StartEnvoyOptions): Promise<Envoy> {
  const e = await startEnvoy({ ...opts, concurrency: 1, mode: "process" });
  if (e.pid === undefined) throw new Error("bench needs process mode");
  const r = spawnSync("taskset", ["-a", "-p", "-c", "0", String(e.pid)], { encoding: "utf8" });
  if (r.status !== 0) {
    await e.stop();
    throw new Error(`taskset failed: ${r.stderr}`);
  }
  return e;
}

export interface Result {
  name: string;
  rps: number;
  p50us: number;
  usPerRequest: number;
}

/** Measures each variant `rounds` times, alternating, and prints a table with ratios to the first variant. */
export async function bench(title: string, variants: Variant[], opts: BenchOptions = DEFAULT_BENCH): Promise<Result[]> {
  need("wrk");
  need("taskset");
  const envoys: Envoy[] = [];
  try {
    for (const v of variants) envoys.push(await startPinnedEnvoy(v.envoy));
    const samples: number[][] = variants.map(() => []);
    const p50s: number[][] = variants.map(() => []);
    // Warm-up: JIT, connection pools, series definitions.
    for (let i = 0; i < variants.length; i++) wrk(envoys[i].url(), { ...opts, seconds: 1 }, variants[i].wrkArgs);
    for (let round = 0; round < opts.rounds; round++) {
      for (let i = 0; i < variants.length; i++) {
        const r = wrk(envoys[i].url(), opts, variants[i].wrkArgs);
        samples[i].push(r.rps);
        p50s[i].push(r.p50us);
      }
    }
    const results = variants.map((v, i) => {
      const rps = median(samples[i]);
      return { name: v.name, rps, p50us: median(p50s[i]), usPerRequest: 1e6 / rps };
    });
    const base = results[0];
    console.log(`\n${title}`);
    console.log(`Envoy --concurrency 1 on core 0, wrk -t1 -c${opts.connections} on core 1, ${opts.rounds} alternating rounds of ${opts.seconds}s, medians`);
    console.log("| variant | req/s | x first | Envoy CPU us/request | added us | p50 us |");
    console.log("|---|---|---|---|---|---|");
    for (const r of results) {
      console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / base.rps).toFixed(2)} | ${r.usPerRequest.toFixed(1)} | ${(r.usPerRequest - base.usPerRequest).toFixed(1)} | ${r.p50us.toFixed(0)} |`);
    }
    return results;
  } finally {
    for (const e of envoys) await e.stop();
  }
}

/** The first HTTP connection manager of a bootstrap. */
export function hcm(cfg: Bootstrap): any {
  return cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
}

/** Makes every route of the first listener answer 200 itself (direct_response): no upstream in the measurement. */
export function directResponse(cfg: Bootstrap): void {
  for (const vh of hcm(cfg).route_config.virtual_hosts) {
    vh.routes = [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }];
  }
}

/** Removes every Wasm filter: the no-filter control. */
export function withoutWasm(cfg: Bootstrap): void {
  const h = hcm(cfg);
  h.http_filters = h.http_filters.filter((f: any) => f.name !== "envoy.filters.http.wasm");
}

/** Port of the loopback "upstream" listener; the harness moves it, and every cluster endpoint pointing at it, together. */
export const LOOPBACK_PORT = 10099;

/**
 * Adds a listener of the same Envoy that answers 200 itself, and points the named clusters (default: all) at it: a
 * proxied request with no outside upstream, so Envoy's core does all the work being measured.
 */
export function loopbackUpstream(cfg: Bootstrap, clusters?: string[]): void {
  cfg.static_resources.listeners.push({
    name: "loopback-upstream",
    address: { socket_address: { address: "127.0.0.1", port_value: LOOPBACK_PORT } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: "loopback",
          route_config: { virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }] }] },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
        },
      }],
    }],
  });
  for (const c of cfg.static_resources.clusters) {
    if (clusters && !clusters.includes(c.name)) continue;
    c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = LOOPBACK_PORT;
  }
}

/** Puts the empty Wasm filter (build/fixtures/empty-filter.wasm, same binding) in place of the first Wasm filter: the floor. */
export function emptyWasm(cfg: Bootstrap): void {
  const wasm = hcm(cfg).http_filters.find((f: any) => f.name === "envoy.filters.http.wasm").typed_config.config;
  wasm.name = "empty-filter";
  wasm.root_id = "empty-filter";
  wasm.vm_config.code.local.filename = "build/fixtures/empty-filter.wasm";
  delete wasm.configuration;
}
