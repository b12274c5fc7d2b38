// `npm run bench` (`-- --quick` for a short pass): where each microsecond of a request goes, in one run. Every module
// and the combined module on the direct_response path (Envoy answers itself) and on the proxied path (a loopback
// listener of the same Envoy answers), against no filter and the floor (an empty Wasm filter on the same binding), next
// to the same logic as an Envoy Lua filter and as a Go proxy-wasm module. Per variant: throughput, Envoy CPU per request
// (/proc schedstat of all its threads over the run, divided by the requests served), added us over no filter, the
// ratio to the floor's added us, p50/p99 added latency at one connection, host calls and VM entries per request (the
// same module driven through the same request shape in the emulator), module size. Method: tests/bench/lib.ts (Envoy
// --concurrency 1 pinned to core 0, wrk pinned to core 1); every Envoy is started first, then each round measures every
// variant in turn (the starting point rotates every round); the figures are medians over rounds, differences and ratios are
// taken within each round before the median (paired), and the spread printed is half the min..max range over rounds.
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { loadBootstrap, type Bootstrap, type Envoy, type StartEnvoyOptions } from "../harness/index.js";
import { buildGoModules, GO_MODULES, type GoBuild } from "./go.js";
import {
  argNumber,
  argText,
  countPerRequest,
  directResponse,
  emptyWasm,
  hcm,
  loopbackUpstream,
  fitCallCosts,
  need,
  paired,
  pairedRatio,
  processCpuNs,
  reniceAll,
  runWrk,
  startPinnedEnvoy,
  summarize,
  withoutWasm,
  type CallCount,
  type CostPoint,
  type RequestShape,
  type Summary,
  useWasm,
} from "./lib.js";

const quick = process.argv.includes("--quick");
const ROUNDS = argNumber("rounds", quick ? 2 : 5);
const SECONDS = argNumber("seconds", quick ? 1 : 2);
const LATENCY_SECONDS = argNumber("latency-seconds", 1);
const CONNECTIONS = argNumber("connections", 16);
/** --nice N (e.g. -10, as root): Envoy and wrk ahead of other work on a shared machine; it slows everything else meanwhile. */
const NICE = argNumber("nice", 0);
/** --json <file>: rows and raw samples of this run, for --compare in a later one. */
const jsonOut = argText("json");
/** --compare <file>: a run saved with --json; each variant's change since it is printed. */
const compareWith = argText("compare");
/** --only <substring>: only the variants whose name has it (no filter and the floor are always measured). */
const only = argText("only");

const MODULES = ["retry-budget", "outlier-breaker", "deadline", "traffic-split", "service-metrics"] as const;
const SINGLE = "envoy-configs/service-metrics.yaml";
const COMBINED = "envoy-configs/resilience.yaml";
const HOST_A = ["-H", "Host: service-a"];
const HOST_INVENTORY = ["-H", "Host: inventory"];

type Path = "direct" | "proxied" | "proxied, resilience.yaml";

interface CostVariant {
  path: Path;
  name: string;
  envoy: StartEnvoyOptions;
  wrkArgs: string[];
  /** The no-filter variant of the same path and bootstrap: "added us" is over it. */
  base: string;
  /** The file whose size is printed (module or script). */
  file?: string;
  /** Counted in the emulator over the same request shape (Wasm modules only). */
  count?: { wasm: string; rootId: string; config: string; shape: RequestShape };
  /** Checked after the warm-up: the filter did its work (not only answered 200). */
  verify?: (e: Envoy) => Promise<void>;
  /** An AssemblyScript module of this project (fitted in "where the microseconds go"). */
  ours?: boolean;
}

function wasmConfig(cfg: Bootstrap): Bootstrap {
  return hcm(cfg).http_filters.find((f: Bootstrap) => f.name === "envoy.filters.http.wasm").typed_config.config;
}

/** The first Wasm filter replaced by Envoy's Lua filter running `script`. */
function useLua(script: string) {
  return (cfg: Bootstrap) => {
    const filters = hcm(cfg).http_filters;
    const i = filters.findIndex((f: Bootstrap) => f.name === "envoy.filters.http.wasm");
    filters[i] = {
      name: "envoy.filters.http.lua",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", default_source_code: { filename: script } },
    };
  };
}

const all = (...fs: Array<(c: Bootstrap) => void>) => (c: Bootstrap) => fs.forEach((f) => f(c));

function variantsFor(path: "direct" | "proxied", go: GoBuild): CostVariant[] {
  const route = path === "direct" ? directResponse : (c: Bootstrap) => loopbackUpstream(c);
  const shape: RequestShape = path === "direct" ? { authority: "service-a" } : { authority: "service-a", cluster: "service-a" };
  const base = `no filter`;
  const v = (name: string, mutate: (c: Bootstrap) => void, extra: Partial<CostVariant> = {}): CostVariant => ({
    path, name, base, wrkArgs: HOST_A, envoy: { config: SINGLE, mutate: all(route, mutate) }, ...extra,
  });
  const as = (name: string, rootId = name, file = `build/${name}.wasm`) =>
    v(name, useWasm(file, rootId, "{}"), { file, ours: true, count: { wasm: file, rootId, config: "{}", shape } });
  return [
    v(base, withoutWasm),
    v("empty Wasm filter (floor)", emptyWasm, {
      file: "build/fixtures/empty-filter.wasm",
      count: { wasm: "build/fixtures/empty-filter.wasm", rootId: "empty-filter", config: "", shape },
    }),
    ...MODULES.map((m) => as(m)),
    as("resilience (combined, {})", "resilience", "build/resilience.wasm"),
    v("Lua: service-metrics logic", useLua("bench/lua/service-metrics.lua"), { file: "bench/lua/service-metrics.lua" }),
    v("Lua: breaker closed path", useLua("bench/lua/breaker-closed.lua"), { file: "bench/lua/breaker-closed.lua" }),
    ...GO_MODULES.map((m) => {
      const file = go.modules[m]!;
      return v(`Go: ${m === "breaker-closed" ? "breaker closed path" : "service-metrics logic"}`, useWasm(file, "go-bench", ""), {
        file,
        count: { wasm: file, rootId: "go-bench", config: "", shape },
        verify: m === "service-metrics" ? goCounted : undefined,
      });
    }),
  ];
}

/** The Go module's per-destination counter reached Envoy's stats: its ABI glue works end to end. */
async function goCounted(e: Envoy): Promise<void> {
  const n = (await e.stats("go_bench_requests_total"))["wasmcustom.go_bench_requests_total;destination=service-a"] ?? 0;
  if (!(n > 0)) throw new Error(`the Go service-metrics module counted no request (go_bench_requests_total = ${n})`);
}

/** resilience.yaml as shipped (its routes, its configuration), proxied to a loopback listener, and its no-filter twin. */
function combinedAsShipped(): CostVariant[] {
  const path: Path = "proxied, resilience.yaml";
  const base = "no filter (resilience.yaml routes)";
  const shipped: string = wasmConfig(loadBootstrap(COMBINED)).configuration.value;
  return [
    { path, name: base, base, wrkArgs: HOST_INVENTORY, envoy: { config: COMBINED, mutate: all((c) => loopbackUpstream(c), withoutWasm) } },
    {
      path, name: "resilience (combined, resilience.yaml)", base, wrkArgs: HOST_INVENTORY,
      envoy: { config: COMBINED, mutate: (c) => loopbackUpstream(c) },
      file: "build/resilience.wasm",
      ours: true,
      count: { wasm: "build/resilience.wasm", rootId: "resilience", config: shipped, shape: { authority: "inventory", cluster: "inventory" } },
    },
  ];
}

interface Samples {
  cpuUs: number[];
  rps: number[];
  p50: number[];
  p99: number[];
  utilisation: number[];
}

need("wrk");
need("taskset");
const t0 = Date.now();
const go = buildGoModules();
const variants = [...variantsFor("direct", go), ...variantsFor("proxied", go), ...combinedAsShipped()]
  .filter((v) => !only || v.name.includes(only) || v.name === v.base || v.name === "empty Wasm filter (floor)");
const counts = new Map<string, CallCount>();
for (const v of variants) if (v.count) counts.set(`${v.path}/${v.name}`, await countPerRequest(v.count.wasm, v.count.rootId, v.count.config, v.count.shape));

const envoys: Envoy[] = [];
const samples: Samples[] = variants.map(() => ({ cpuUs: [], rps: [], p50: [], p99: [], utilisation: [] }));
try {
  for (const v of variants) envoys.push(await startPinnedEnvoy(v.envoy));
  if (NICE) for (const e of envoys) reniceAll(e.pid!, NICE);
  const check = (v: CostVariant, non2xx: number) => {
    if (non2xx) throw new Error(`${v.path} / ${v.name}: ${non2xx} answers were not 2xx`);
  };
  // Warm-up (JIT, connection pools, series definitions), then: did each filter work, not only answer 200?
  variants.forEach((v, i) => check(v, runWrk(envoys[i]!.url(), CONNECTIONS, 1, v.wrkArgs, NICE).non2xx));
  const failing = envoys.map((e, i) => [variants[i]!, /^.*\[(error|critical)\].*$/m.exec(e.logs())?.[0]] as const).filter(([, line]) => line);
  if (failing.length) throw new Error(`filters logged errors:\n${failing.map(([v, line]) => `  ${v.path} / ${v.name}: ${line}`).join("\n")}`);
  for (const [i, v] of variants.entries()) await v.verify?.(envoys[i]!);
  for (let round = 0; round < ROUNDS; round++) {
    // The starting point rotates, so no variant always runs at the same point of a round.
    for (let k = 0; k < variants.length; k++) {
      const i = (k + round * 7) % variants.length, v = variants[i]!, e = envoys[i]!;
      const cpu0 = processCpuNs(e.pid!), wall0 = process.hrtime.bigint();
      const load = runWrk(e.url(), CONNECTIONS, SECONDS, v.wrkArgs, NICE);
      const cpuNs = processCpuNs(e.pid!) - cpu0, wallNs = Number(process.hrtime.bigint() - wall0);
      const lat = runWrk(e.url(), 1, LATENCY_SECONDS, v.wrkArgs, NICE);
      check(v, load.non2xx + lat.non2xx);
      const s = samples[i]!;
      s.cpuUs.push(cpuNs / 1e3 / load.requests);
      s.rps.push(load.rps);
      s.utilisation.push(cpuNs / wallNs);
      s.p50.push(lat.p50us);
      s.p99.push(lat.p99us);
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS} done (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
} finally {
  for (const e of envoys) await e.stop();
}

// ---- figures ----
const index = (path: Path, name: string) => variants.findIndex((v) => v.path === path && v.name === name);
const FLOOR = "empty Wasm filter (floor)";
/** The floor's index for a path (resilience.yaml's proxied rows use the proxied floor). */
const floorOf = (path: Path) => index(path === "direct" ? "direct" : "proxied", FLOOR);
const addedOf = (i: number) => paired(samples[i]!.cpuUs, samples[index(variants[i]!.path, variants[i]!.base)]!.cpuUs);
const f = (x: number | undefined, d = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : "-");
const pm = (s: Summary, d = 1) => (Number.isFinite(s.median) ? `${f(s.median, d)} ±${f(s.spread, d)}` : "-");

interface Row {
  path: Path;
  name: string;
  isBase: boolean;
  rps: number;
  xNoFilter: number;
  cpuUs: Summary;
  addedUs: Summary;
  xFloor: number;
  p50AddedUs: number;
  p99AddedUs: number;
  hostCalls?: number;
  vmEntries?: number;
  allocations?: number;
  kb?: number;
  utilisation: number;
}

const rows: Row[] = variants.map((v, i) => {
  const b = index(v.path, v.base);
  const c = counts.get(`${v.path}/${v.name}`);
  return {
    path: v.path,
    name: v.name,
    isBase: v.base === v.name,
    rps: summarize(samples[i]!.rps).median,
    xNoFilter: summarize(pairedRatio(samples[b]!.cpuUs, samples[i]!.cpuUs)).median,
    cpuUs: summarize(samples[i]!.cpuUs),
    addedUs: summarize(addedOf(i)),
    xFloor: summarize(pairedRatio(addedOf(i), addedOf(floorOf(v.path)))).median,
    p50AddedUs: summarize(paired(samples[i]!.p50, samples[b]!.p50)).median,
    p99AddedUs: summarize(paired(samples[i]!.p99, samples[b]!.p99)).median,
    hostCalls: c?.hostCalls,
    vmEntries: c?.vmEntries,
    allocations: c?.allocations,
    kb: v.file ? statSync(v.file).size / 1024 : undefined,
    utilisation: summarize(samples[i]!.utilisation).median,
  };
});

const TITLES: Record<Path, string> = {
  direct: "direct_response route (Envoy answers itself; service-metrics.yaml listener, config {})",
  proxied: "proxied to a loopback listener of the same Envoy (service-metrics.yaml routes, config {})",
  "proxied, resilience.yaml": "proxied, envoy-configs/resilience.yaml as shipped (Host: inventory)",
};
console.log(`\nWhat the filters cost: Envoy 1.40 --concurrency 1 on core 0, wrk -t1 on core 1${NICE ? ` (both at nice ${NICE})` : ""}; ${ROUNDS} interleaved rounds of ` +
  `${SECONDS} s at ${CONNECTIONS} connections, then ${LATENCY_SECONDS} s at 1 connection, per variant; medians, ±: half the range over rounds.`);
console.log(`CPU us/req: Envoy's CPU time (all threads) per request served. x no filter: the throughput a saturated core would keep, ` +
  `no filter's CPU us/req / this one's (req/s itself is bound by whatever else runs). added: over no filter, same round. x floor: added / the empty ` +
  `Wasm filter's added, same round. p50/p99 +us: added latency at 1 connection. host calls, VM entries, allocations: per request in the emulator.`);
for (const path of Object.keys(TITLES) as Path[]) {
  console.log(`\n### ${TITLES[path]}\n`);
  console.log("| variant | req/s | x no filter (CPU) | CPU us/req | added us | x floor | p50 +us | p99 +us | host calls | VM entries | allocs | KB |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows.filter((r) => r.path === path)) {
    const na = (x: string) => (r.isBase ? "-" : x);
    console.log(`| ${r.name} | ${f(r.rps, 0)} | ${f(r.xNoFilter, 2)} | ${pm(r.cpuUs, 2)} | ${na(pm(r.addedUs))} | ` +
      `${na(r.name === FLOOR ? "1" : f(r.xFloor, 1))} | ${na(f(r.p50AddedUs))} | ${na(f(r.p99AddedUs))} | ` +
      `${f(r.hostCalls, 1)} | ${f(r.vmEntries, 1)} | ${f(r.allocations, 1)} | ${f(r.kb, 1)} |`);
  }
}

// Where the microseconds go: the floor, then host calls and extra VM entries at a per-call cost fitted over this
// project's modules in this run, then what is left (the module's own work: parsing, allocation, GC, logic).
const points: Array<CostPoint & { row: Row }> = rows
  .filter((r, i) => variants[i]!.ours && r.hostCalls !== undefined)
  .map((r) => {
    const floor = rows[floorOf(r.path)]!;
    return { row: r, aboveFloorUs: r.addedUs.median - floor.addedUs.median, hostCalls: r.hostCalls!, extraVmEntries: r.vmEntries! - floor.vmEntries! };
  });
const fit = fitCallCosts(points);
console.log(`\n### Where the microseconds go (estimate: one host call ~${f(fit.hostCallUs, 2)} us, one VM entry beyond the floor's ` +
  `~${f(fit.vmEntryUs, 2)} us, least squares over the ${points.length} module rows above; the rest is the module's own work)\n`);
console.log("| module | path | added us | floor | host calls | extra VM entries | the rest |");
console.log("|---|---|---|---|---|---|---|");
for (const p of points) {
  const calls = p.hostCalls * fit.hostCallUs, entries = p.extraVmEntries * fit.vmEntryUs;
  console.log(`| ${p.row.name} | ${p.row.path} | ${f(p.row.addedUs.median)} | ${f(p.row.addedUs.median - p.aboveFloorUs)} | ` +
    `${f(p.hostCalls, 0)} = ${f(calls)} | ${f(p.extraVmEntries, 0)} = ${f(entries)} | ${f(p.aboveFloorUs - calls - entries)} |`);
}

const util = rows.map((r) => r.utilisation);
const lowUtil = rows.filter((r) => r.utilisation < 0.85).length;
console.log(`\nEnvoy's core was busy ${f(Math.min(...util) * 100, 0)}% to ${f(Math.max(...util) * 100, 0)}% of each load run` +
  (lowUtil ? `; below 85% for ${lowUtil} variants, whose req/s is then bound by wrk or by other load (CPU us/req still holds).` : "."));
console.log(`Go: ${go.sdkVersion} built by ${go.goVersion}: ${go.command}. Lua: envoy.filters.http.lua (LuaJIT), bench/lua/*.lua.`);
console.log(`Per request by call (emulator; "vm:" = an entry into the module):${[...counts].map(([k, c]) => `\n  ${k}: ${JSON.stringify(c.byName)}`).join("")}`);
console.log(`\n${((Date.now() - t0) / 1000).toFixed(0)} s in all.`);
if (compareWith) {
  // Absolute us drift with the machine's load from run to run; x floor and the counts do not.
  const before = new Map((JSON.parse(readFileSync(compareWith, "utf8")) as { rows: Row[] }).rows.map((r) => [`${r.path}/${r.name}`, r]));
  console.log(`\n### Since ${compareWith}\n`);
  console.log("| variant | path | added us | x floor | host calls | VM entries | allocs | KB |");
  console.log("|---|---|---|---|---|---|---|---|");
  const change = (a: number | undefined, b: number | undefined, d = 1) => (f(a, d) === f(b, d) ? f(b, d) : `${f(a, d)} -> ${f(b, d)}`);
  for (const r of rows.filter((r) => !r.isBase)) {
    const b = before.get(`${r.path}/${r.name}`);
    if (!b) continue;
    console.log(`| ${r.name} | ${r.path} | ${change(b.addedUs.median, r.addedUs.median)} | ${change(b.xFloor, r.xFloor)} | ` +
      `${change(b.hostCalls, r.hostCalls)} | ${change(b.vmEntries, r.vmEntries)} | ${change(b.allocations, r.allocations)} | ${change(b.kb, r.kb)} |`);
  }
}
if (jsonOut) {
  mkdirSync(dirname(jsonOut), { recursive: true });
  const raw = variants.map((v, i) => ({ path: v.path, name: v.name, ...samples[i] }));
  writeFileSync(jsonOut, JSON.stringify({ when: new Date().toISOString(), rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, go, fit, rows, raw }, null, 1));
}
