// Shared pieces of the cost benchmarks: Envoy pinned to core 0 with --concurrency 1, wrk pinned to core 1,
// keep-alive connections, rounds alternating between variants, medians reported, ratios within one run.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
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

export function need(tool: string): void {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} not found: run \`npm run setup\``);
}

/** What one wrk run printed: totals, and the latency percentiles of its --latency table (in microseconds). */
export interface WrkRun {
  requests: number;
  rps: number;
  non2xx: number;
  p50us: number;
  p99us: number;
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1_000, s: 1_000_000 };

/** A wrk duration such as "45.12us", "1.20ms" or "2.00s", in microseconds (NaN if it is not one). */
export function durationUs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_US[m[2]!]! : NaN;
}

/** Parses wrk's report (run with --latency). */
export function parseWrk(stdout: string): WrkRun {
  const pct = (p: number) => durationUs(new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m").exec(stdout)?.[1] ?? "");
  return {
    requests: Number(/(\d+) requests in/.exec(stdout)?.[1]),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
    p50us: pct(50),
    p99us: pct(99),
  };
}

/** Runs wrk -t1 pinned to core 1 (Envoy has core 0) for whole seconds, at niceness `nice` if not 0; the report parsed. */
export function runWrk(url: string, connections: number, seconds: number, extra: string[] = [], nice = 0): WrkRun {
  const cmd = ["taskset", "-c", "1", "wrk", "-t1", `-c${connections}`, `-d${seconds}s`, "--latency", ...extra, url];
  if (nice) cmd.unshift("nice", "-n", String(nice));
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  return parseWrk(r.stdout);
}

/** Runs wrk pinned to core 1; returns requests per second and p50; any non-2xx answer fails the run. */
export function wrk(url: string, opts: BenchOptions, extra: string[] = []): { rps: number; p50us: number } {
  const r = runWrk(url, opts.connections, opts.seconds, extra);
  if (r.non2xx) throw new Error(`wrk saw ${r.non2xx} non-2xx responses at ${url}`);
  return r;
}

/** The median (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median and spread (half the min..max range) of a sample; non-finite values are left out. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  spread: number;
}

export function summarize(xs: number[]): Summary {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { median: NaN, min: NaN, max: NaN, spread: NaN };
  const min = Math.min(...ok), max = Math.max(...ok);
  return { median: median(ok), min, max, spread: (max - min) / 2 };
}

/** CPU time of one task from /proc/<pid>/task/<tid>/schedstat ("<ns on cpu> <ns waiting> <slices>"), in ns. */
export function parseSchedstat(text: string): number {
  const ns = Number(text.trim().split(/\s+/)[0]);
  if (text.trim() === "" || !Number.isFinite(ns)) throw new Error(`unreadable schedstat: "${text}"`);
  return ns;
}

/** CPU time a process has used so far, all its threads, in ns (ns precision, unlike /proc/<pid>/stat's ticks). */
export function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += parseSchedstat(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e; // a thread that ended meanwhile
    }
  }
  return total;
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

/** Sets the niceness of every thread of a process (negative: ahead of the machine's other work; needs root). */
export function reniceAll(pid: number, nice: number): void {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const r = spawnSync("renice", ["-n", String(nice), "-p", tid], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`renice ${nice} of thread ${tid} failed: ${r.stderr.trim()}`);
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

/** The first Wasm filter runs `file` with root id `rootId` and plugin configuration `config` (a string). */
export function useWasm(file: string, rootId: string, config: string): (cfg: Bootstrap) => void {
  return (cfg) => {
    const wasm = hcm(cfg).http_filters.find((f: any) => f.name === "envoy.filters.http.wasm").typed_config.config;
    wasm.name = rootId;
    wasm.root_id = rootId;
    wasm.vm_config.code.local.filename = file;
    wasm.configuration = { "@type": "type.googleapis.com/google.protobuf.StringValue", value: config };
  };
}

/** The value of option `--<name> <value>` on this command line, or undefined. */
export function argText(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** Numeric option `--<name> N`, else the environment's BENCH_<NAME>, else `fallback`. */
export function argNumber(name: string, fallback: number): number {
  return Number(argText(name) ?? process.env[`BENCH_${name.toUpperCase()}`] ?? fallback);
}

/** The request every cost variant serves, as the emulator drives it: wrk's GET / with a Host header. */
export interface RequestShape {
  authority: string;
  /** The routed cluster on the proxied path (xds.cluster_name); absent on a direct_response route. */
  cluster?: string;
}

/** Host calls and VM entries (callbacks and malloc re-entries) per request, in steady state. */
export interface CallCount {
  hostCalls: number;
  vmEntries: number;
  /** Per request, by name: host calls as imported, VM entries as "vm:<export>". */
  byName: Record<string, number>;
  /** Blocks the module's allocator handed out per request (instrumentAllocations), when a debug build sits beside it. */
  allocations?: number;
}

/**
 * Drives `wasm` in the emulator (one worker, vm_id "resilience" as the bootstraps have it) through the request Envoy
 * serves in the bench: request headers (end of stream), response headers, the 2-byte body, then log/done/delete.
 * Counts over 100 requests after 200 warm ones (destinations defined, caches filled), per request.
 */
export async function countPerRequest(wasm: string, rootId: string, config: string, shape: RequestShape): Promise<CallCount> {
  const { calls, entries } = await callsPerRequest(wasm, rootId, config, shape);
  const byName: Record<string, number> = {};
  const sum = (c: Record<string, number>, prefix: string) =>
    Object.entries(c).reduce((total, [k, x]) => ((byName[prefix + k] = x), total + x), 0);
  const debug = wasm.replace(/\.wasm$/, ".debug.wasm");
  const allocations = existsSync(debug) ? await allocationsPerRequest(debug, rootId, config, shape) : undefined;
  return { hostCalls: sum(calls, ""), vmEntries: sum(entries, "vm:"), byName, allocations };
}

/**
 * Host calls and VM entries (callbacks, `malloc`) by name, per request, over `n` requests after `warm` ones through one
 * emulated worker: the request the benchmarks serve (a GET with a Host header, answered 200 with a 2-byte body).
 */
export async function callsPerRequest(wasm: string, rootId: string, config: string, shape: RequestShape, warm = 200, n = 100):
  Promise<{ calls: Record<string, number>; entries: Record<string, number>; allocations?: number }> {
  const { Host } = await import("../emulator/index.js");
  const host = new Host({ vmId: "resilience" });
  const [vm] = host.startVms(wasm, 1, { pluginConfig: config, rootId, pluginName: rootId });
  const one = (i: number) => {
    const s = vm!.newStream({ properties: shape.cluster ? { "xds.cluster_name": shape.cluster } : {} });
    s.requestHeaders({ ":authority": shape.authority, ":path": "/", ":method": "GET", ":scheme": "http", "x-forwarded-proto": "http", "x-request-id": `bench-${i}` }, true);
    host.clock.advanceMs(1);
    if (s.requestForwarded) {
      s.responseHeaders({ ":status": "200", "content-length": "2", "content-type": "text/plain" }, false);
      s.responseBody("ok", true);
    }
    s.finish();
  };
  for (let i = 0; i < warm; i++) one(i);
  host.resetHostCallCount();
  const allocCount = vm!.instance.exports[ALLOC_COUNT] as WebAssembly.Global | undefined;
  const allocsBefore = allocCount ? Number(allocCount.value) : 0;
  for (let i = 0; i < n; i++) one(warm + i);
  const per = (c: Record<string, number>) => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v / n]));
  const allocations = allocCount ? (Number(allocCount.value) - allocsBefore) / n : undefined;
  return { calls: per(host.hostCallCount), entries: per(host.moduleCallCount), allocations };
}

/** The global instrumentAllocations adds and exports: how many blocks the module's allocator handed out. */
const ALLOC_COUNT = "alloc_count";

/**
 * A copy of a module built with names (build/<name>.debug.wasm) whose allocator (`~lib/rt/tlsf/__alloc`: every object,
 * string and buffer, and every `malloc` the host asks for) counts its calls in an exported global; callsPerRequest
 * then reports allocations per request. Written next to the module as <name>.alloc-count.wasm.
 */
export async function instrumentAllocations(debugWasm: string): Promise<string> {
  const binaryen = (await import("binaryen")).default;
  const m = binaryen.readBinary(readFileSync(debugWasm));
  m.setFeatures(binaryen.Features.All);
  const name = "~lib/rt/tlsf/__alloc";
  const f = m.getFunction(name);
  if (!f) throw new Error(`${debugWasm} has no function named ${name}: build it with names (the debug target)`);
  const info = binaryen.getFunctionInfo(f);
  m.addGlobal(ALLOC_COUNT, binaryen.i32, true, m.i32.const(0));
  const bump = m.global.set(ALLOC_COUNT, m.i32.add(m.global.get(ALLOC_COUNT, binaryen.i32), m.i32.const(1)));
  // binaryen.js has Function.setBody; its type declarations do not list it.
  const fn = (binaryen as unknown as { Function: { setBody(f: number, body: number): void } }).Function;
  fn.setBody(f, m.block(null, [bump, info.body], info.results));
  m.addGlobalExport(ALLOC_COUNT, ALLOC_COUNT);
  if (!m.validate()) throw new Error(`instrumenting ${debugWasm} made an invalid module`);
  const out = debugWasm.replace(/(\.debug)?\.wasm$/, ".alloc-count.wasm");
  writeFileSync(out, m.emitBinary());
  m.dispose();
  return out;
}

/** Allocations per request (see instrumentAllocations) of a module built with names, driven as callsPerRequest does. */
export async function allocationsPerRequest(debugWasm: string, rootId: string, config: string, shape: RequestShape, warm = 200, n = 100): Promise<number> {
  const wasm = await instrumentAllocations(debugWasm);
  return (await callsPerRequest(wasm, rootId, config, shape, warm, n)).allocations!;
}

/** Per round, a[r] - b[r]: a difference taken within each round, before any median (rounds are paired). */
export function paired(a: number[], b: number[]): number[] {
  return a.map((x, r) => x - b[r]!);
}

/** Per round, a[r] / b[r]. */
export function pairedRatio(a: number[], b: number[]): number[] {
  return a.map((x, r) => x / b[r]!);
}

/** One module's measured cost above the floor, and what it does more than the floor per request. */
export interface CostPoint {
  /** Added us over no filter, minus the floor's added us (same path). */
  aboveFloorUs: number;
  hostCalls: number;
  /** VM entries beyond the floor's. */
  extraVmEntries: number;
}

/**
 * Least squares, no intercept: aboveFloorUs ~ hostCall * hostCalls + vmEntry * extraVmEntries. An estimate of what one
 * host call and one extra VM entry cost in Envoy, read from modules that make different numbers of each.
 */
export function fitCallCosts(points: CostPoint[]): { hostCallUs: number; vmEntryUs: number } {
  let xx = 0, xy = 0, yy = 0, xt = 0, yt = 0;
  for (const p of points) {
    xx += p.hostCalls * p.hostCalls;
    xy += p.hostCalls * p.extraVmEntries;
    yy += p.extraVmEntries * p.extraVmEntries;
    xt += p.hostCalls * p.aboveFloorUs;
    yt += p.extraVmEntries * p.aboveFloorUs;
  }
  const det = xx * yy - xy * xy;
  if (Math.abs(det) < 1e-9) return { hostCallUs: NaN, vmEntryUs: NaN };
  return { hostCallUs: (xt * yy - yt * xy) / det, vmEntryUs: (yt * xx - xt * xy) / det };
}
