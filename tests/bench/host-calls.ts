// `npm run bench:calls` (`-- --quick` for a short pass): the price of each kind of host call, measured directly. The
// probe module (tests/fixtures/host-call-probe, on the project's binding) makes one kind of call N times per request;
// its Envoy CPU per request minus the probe doing nothing (`none`, same round), divided by N, is what one such call
// costs Envoy and the binding together (the wrapper's copy-out and the host's malloc re-entry included, as our filters
// pay them). Method as in cost.ts (tests/bench/lib.ts): Envoy --concurrency 1 pinned to core 0, wrk on core 1; every
// Envoy started first, each round measures every variant in turn (the starting point rotates); differences are taken
// within each round before the median; ± is half the min..max range over rounds. After the warm-up each probe's own
// counters (per-worker sums flushed on its tick) must show N calls that did their work per request Envoy served, so a
// variant that silently does nothing cannot report a price.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Bootstrap, Envoy, StartEnvoyOptions } from "../harness/index.js";
import { waitFor, notYet } from "../harness/index.js";
import {
  argNumber,
  argText,
  callsPerRequest,
  directResponse,
  emptyWasm,
  loopbackUpstream,
  need,
  paired,
  processCpuNs,
  reniceAll,
  runWrk,
  startPinnedEnvoy,
  summarize,
  useWasm,
  withoutWasm,
  type RequestShape,
  type Summary,
} from "./lib.js";

const quick = process.argv.includes("--quick");
const ROUNDS = argNumber("rounds", quick ? 3 : 7);
const SECONDS = argNumber("seconds", quick ? 1 : 2);
const CONNECTIONS = argNumber("connections", 16);
/** Calls per request for each op. */
const N = argNumber("n", 10);
/** --nice N (e.g. -10, as root): Envoy and wrk ahead of other work on a shared machine. */
const NICE = argNumber("nice", 0);
/** --both: every op on both paths (default: each op on the path named for it below). */
const BOTH = process.argv.includes("--both");
/** --json <file>: the raw samples of this run. */
const jsonOut = argText("json");
/** --only <substring>: only the ops whose name has it (no filter, the floor, none and the VM entry always run). */
const only = argText("only");

const PROBE = "build/fixtures/host-call-probe.wasm";
const PROBE_RESPONSE = "build/fixtures/host-call-probe-response.wasm";
const ROOT_ID = "host-call-probe";
const CONFIG = "envoy-configs/service-metrics.yaml";
const HOST_A = ["-H", "Host: service-a"];

type Path = "direct" | "proxied";

/** Each op, the host call it makes and where it is measured by default (both paths with --both, where it can run). */
const OPS: Array<{ op: string; call: string; paths: Path[]; alsoOn?: Path }> = [
  { op: "clock", call: "proxy_get_current_time_nanoseconds", paths: ["direct"], alsoOn: "proxied" },
  { op: "hget-absent", call: "proxy_get_header_map_value", paths: ["direct"], alsoOn: "proxied" },
  { op: "hget-present", call: "proxy_get_header_map_value", paths: ["direct"], alsoOn: "proxied" },
  { op: "hget-present-raw", call: "proxy_get_header_map_value", paths: ["direct"], alsoOn: "proxied" },
  { op: "pairs", call: "proxy_get_header_map_pairs", paths: ["direct"], alsoOn: "proxied" },
  { op: "hreplace", call: "proxy_replace_header_map_value", paths: ["direct"], alsoOn: "proxied" },
  { op: "hremove-absent", call: "proxy_remove_header_map_value", paths: ["direct"], alsoOn: "proxied" },
  { op: "prop-time", call: "proxy_get_property", paths: ["direct"], alsoOn: "proxied" },
  { op: "metric-record", call: "proxy_record_metric", paths: ["direct"], alsoOn: "proxied" },
  { op: "metric-inc", call: "proxy_increment_metric", paths: ["direct"], alsoOn: "proxied" },
  { op: "metric-get", call: "proxy_get_metric", paths: ["direct"], alsoOn: "proxied" },
  { op: "shared-get", call: "proxy_get_shared_data", paths: ["direct"], alsoOn: "proxied" },
  // A direct_response route has no cluster, and no upstream attempt: these two run proxied only.
  { op: "prop-cluster", call: "proxy_get_property", paths: ["proxied"] },
  { op: "route-clear", call: "proxy_call_foreign_function", paths: ["proxied"], alsoOn: "direct" },
  { op: "prop-code", call: "proxy_get_property", paths: ["proxied"], alsoOn: "direct" },
  { op: "prop-flags", call: "proxy_get_property", paths: ["proxied"], alsoOn: "direct" },
  { op: "prop-duration", call: "proxy_get_property", paths: ["proxied"], alsoOn: "direct" },
  { op: "prop-attempts", call: "proxy_get_property", paths: ["proxied"] },
];
const LOG_PHASE = new Set(["prop-code", "prop-flags", "prop-duration", "prop-attempts"]);

const NO_FILTER = "no filter";
const FLOOR = "empty filter (floor)";
const NONE = "probe none";
const ENTRY = "vm-entry (on_response_headers exported)";

interface Variant {
  path: Path;
  name: string;
  envoy: StartEnvoyOptions;
  /** The probe's op spec, and the module running it. */
  spec?: string;
  wasm?: string;
  /** The call the op makes (counted in the emulator), and how many of it per request. */
  call?: string;
  n: number;
  /** Checked after the warm-up against Envoy's stats. */
  verify?: (e: Envoy) => Promise<void>;
}

const all = (...fs: Array<(c: Bootstrap) => void>) => (c: Bootstrap) => fs.forEach((f) => f(c));

/** The counter `name` reaches `want(requests served)` (exactly, or within [low, high]) once the probe's tick flushed. */
async function settles(e: Envoy, name: string, want: (rq: number) => number | [number, number]): Promise<void> {
  await waitFor(`${name} = its expected count`, async () => {
    const s = await e.stats("^(http\\.ingress\\.downstream_rq_total|wasmcustom\\.host_call_probe_.*)$");
    const rq = s["http.ingress.downstream_rq_total"] ?? 0, got = s[`wasmcustom.${name}`] ?? 0, w = want(rq);
    const [low, high] = typeof w === "number" ? [w, w] : w;
    return rq > 0 && got >= low && got <= high ? got : notYet({ rq, [name]: got, want: w });
  }, { timeoutMs: 15_000 });
}

/** The probe ran on every request and N of its calls did their work on each. */
function probeDidItsWork(n: number, op: string) {
  return async (e: Envoy) => {
    // Flushed together with the ops sum: once this one is final, so is that.
    await settles(e, "host_call_probe_requests_total", (rq) => rq);
    // A request still in flight when wrk stops is reset, and logs without a response code: one per connection at most.
    const inFlight = LOG_PHASE.has(op) ? CONNECTIONS : 0;
    await settles(e, "host_call_probe_ok_total", (rq) => (op === "none" ? 0 : [n * (rq - inFlight), n * rq]));
    // Calls whose result the probe cannot see: Envoy's own stat shows them.
    if (op === "metric-inc") {
      const inc = (await e.stats("^wasmcustom\\.host_call_probe_inc_total$"))["wasmcustom.host_call_probe_inc_total"] ?? 0;
      const rq = (await e.stat("http.ingress.downstream_rq_total")) ?? 0;
      if (inc < n * rq) throw new Error(`metric-inc: host_call_probe_inc_total ${inc} < ${n} x ${rq} requests`);
    }
    if (op === "metric-record") {
      // Histogram samples reach the admin output at Envoy's stats flush (every 5 s by default).
      const rq = (await e.stat("http.ingress.downstream_rq_total")) ?? 0;
      await waitFor(`host_call_probe_recorded_count >= ${n} x ${rq}`, async () => {
        const count = Number(/^host_call_probe_recorded_count(?:\{[^}]*\})? (\d+)/m.exec(await e.prometheus())?.[1] ?? 0);
        return count >= n * rq ? count : notYet(count);
      }, { timeoutMs: 15_000 });
    }
  };
}

function variantsFor(path: Path): Variant[] {
  const route = path === "direct" ? directResponse : (c: Bootstrap) => loopbackUpstream(c);
  const v = (name: string, mutate: (c: Bootstrap) => void, extra: Partial<Variant> = {}): Variant =>
    ({ path, name, n: 0, envoy: { config: CONFIG, mutate: all(route, mutate) }, ...extra });
  const probe = (name: string, op: string, n: number, call?: string, wasm = PROBE): Variant =>
    v(name, useWasm(wasm, ROOT_ID, `${op}*${n}`), { spec: `${op}*${n}`, wasm, call, n, verify: probeDidItsWork(n, op) });
  const ops = OPS.filter((o) => o.paths.includes(path) || (BOTH && o.alsoOn === path)).filter((o) => !only || o.op.includes(only));
  const entry = probe(ENTRY, "none", 1, "vm:proxy_on_response_headers", PROBE_RESPONSE);
  entry.verify = async (e) => {
    await probeDidItsWork(1, "none")(e);
    // Flushed with requests_total (settled above); a request reset in flight at wrk's end gets no response headers.
    await settles(e, "host_call_probe_response_entries_total", (rq) => [rq - CONNECTIONS, rq]);
  };
  return [
    v(NO_FILTER, withoutWasm),
    v(FLOOR, emptyWasm),
    probe(NONE, "none", N),
    ...ops.map((o) => probe(o.op, o.op, N, o.call)),
    entry,
  ];
}

need("wrk");
need("taskset");
const t0 = Date.now();
const variants = [...variantsFor("direct"), ...variantsFor("proxied")];

// The emulator's count of each variant's call per request, over the request wrk sends: what the division uses.
const counted = new Map<Variant, number>();
for (const v of variants) {
  if (!v.spec || !v.call) continue;
  const shape: RequestShape = v.path === "direct" ? { authority: "service-a" } : { authority: "service-a", cluster: "service-a" };
  const c = await callsPerRequest(v.wasm!, ROOT_ID, v.spec, shape);
  const x = v.call.startsWith("vm:") ? c.entries[v.call.slice(3)] : c.calls[v.call];
  if (x !== v.n) throw new Error(`${v.path} / ${v.name}: the emulator counts ${x} ${v.call} per request, not ${v.n}: ${JSON.stringify(c)}`);
  counted.set(v, x);
}

const envoys: Envoy[] = [];
const cpuUs: number[][] = variants.map(() => []);
const utilisation: number[][] = variants.map(() => []);
try {
  for (const v of variants) envoys.push(await startPinnedEnvoy(v.envoy));
  if (NICE) for (const e of envoys) reniceAll(e.pid!, NICE);
  const check = (v: Variant, non2xx: number) => {
    if (non2xx) throw new Error(`${v.path} / ${v.name}: ${non2xx} answers were not 2xx`);
  };
  // Warm-up (JIT, connection pools, series definitions), then: did each probe do its calls, not only answer 200?
  variants.forEach((v, i) => check(v, runWrk(envoys[i]!.url(), CONNECTIONS, 1, HOST_A, NICE).non2xx));
  const failing = envoys.map((e, i) => [variants[i]!, /^.*\[(error|critical)\].*$/m.exec(e.logs())?.[0]] as const).filter(([, line]) => line);
  if (failing.length) throw new Error(`filters logged errors:\n${failing.map(([v, line]) => `  ${v.path} / ${v.name}: ${line}`).join("\n")}`);
  await Promise.all(variants.map((v, i) => v.verify?.(envoys[i]!).catch((e: Error) => {
    throw new Error(`${v.path} / ${v.name} did not do its work: ${e.message}`);
  })));
  process.stderr.write(`${variants.length} variants warm and verified (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < variants.length; k++) {
      const i = (k + round * 7) % variants.length, v = variants[i]!, e = envoys[i]!;
      const cpu0 = processCpuNs(e.pid!), wall0 = process.hrtime.bigint();
      const load = runWrk(e.url(), CONNECTIONS, SECONDS, HOST_A, NICE);
      const cpuNs = processCpuNs(e.pid!) - cpu0, wallNs = Number(process.hrtime.bigint() - wall0);
      check(v, load.non2xx);
      cpuUs[i]!.push(cpuNs / 1e3 / load.requests);
      utilisation[i]!.push(cpuNs / wallNs);
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS} done (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
} finally {
  for (const e of envoys) await e.stop();
}

// ---- figures ----
const index = (path: Path, name: string) => variants.findIndex((v) => v.path === path && v.name === name);
const over = (i: number, base: number) => summarize(paired(cpuUs[i]!, cpuUs[base]!));
const f = (x: number | undefined, d = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : "-");
const pm = (s: Summary, d = 1) => (Number.isFinite(s.median) ? `${f(s.median, d)} ±${f(s.spread, d)}` : "-");
/** Per round, the cost per call: (variant - none) / n. */
const perCallSamples = (i: number, none: number, n: number) => paired(cpuUs[i]!, cpuUs[none]!).map((x) => x / n);
/** The middle half of a sample (quartiles by rank): with many rounds, a spread one busy round cannot blow up. */
const iqr = (xs: number[], d = 2) => {
  const s = [...xs].sort((a, b) => a - b), at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return s.length >= 4 ? ` [${f(at(0.25), d)}..${f(at(0.75), d)}]` : "";
};
const perCallText = (xs: number[]) => `${pm(summarize(xs), 2)}${iqr(xs)}`;

console.log(`\nWhat each host call costs: Envoy 1.40 --concurrency 1 on core 0, wrk -t1 -c${CONNECTIONS} on core 1` +
  `${NICE ? ` (both at nice ${NICE})` : ""}; ${ROUNDS} interleaved rounds of ${SECONDS} s per variant; medians, ±: half the range over rounds.`);
console.log(`CPU us/req: Envoy's CPU time (all threads) per request served. added: over the probe doing nothing (\`none\`: a stream ` +
  `context, no call), same round. per call: added / N (N = ${N}; 1 for the VM entry), [quartiles over rounds] from 4 rounds on. Counts: the emulator's, over the same request; ` +
  `Envoy's stats confirmed each probe's calls did their work on every request after the warm-up.`);
for (const path of ["direct", "proxied"] as Path[]) {
  const none = index(path, NONE), base = index(path, NO_FILTER), floor = index(path, FLOOR);
  console.log(`\n### ${path === "direct" ? "direct_response route (Envoy answers itself)" : "proxied to a loopback listener of the same Envoy"}\n`);
  console.log("| op | call x per request | Envoy CPU us/req | added us over none | us per call |");
  console.log("|---|---|---|---|---|");
  for (const [i, v] of variants.entries()) {
    if (v.path !== path) continue;
    const cpu = pm(summarize(cpuUs[i]!), 2);
    if (!v.spec) {
      console.log(`| ${v.name} | - | ${cpu} | ${i === base ? "-" : `${pm(over(i, base))} over no filter`} | - |`);
    } else if (i === none) {
      console.log(`| ${v.name} | none | ${cpu} | ${pm(over(i, base))} over no filter, ${pm(over(i, floor))} over the floor | - |`);
    } else {
      console.log(`| ${v.name} | ${v.call} x ${counted.get(v)} | ${cpu} | ${pm(over(i, none))} | ${perCallText(perCallSamples(i, none, v.n))} |`);
    }
  }
  const perCallOver = (a: string, b: string) => {
    const i = index(path, a), j = index(path, b);
    return i >= 0 && j >= 0 ? perCallText(paired(cpuUs[i]!, cpuUs[j]!).map((x) => x / N)) : undefined;
  };
  const returned = perCallOver("hget-present-raw", "hget-absent"), decode = perCallOver("hget-present", "hget-present-raw");
  if (returned) console.log(`\nA value returned into Wasm: the host's malloc re-entry, its copy and our heap.free (hget-present-raw - hget-absent, per call): ${returned} us`);
  if (decode) console.log(`The wrapper's string decode and its garbage (hget-present - hget-present-raw, per call): ${decode} us`);
}
const util = utilisation.flat();
console.log(`\nEnvoy's core was busy ${f(Math.min(...util) * 100, 0)}% to ${f(Math.max(...util) * 100, 0)}% of each load run (CPU us/req holds either way).`);
const idle = variants.map((v, i) => [v, Math.min(...utilisation[i]!)] as const).filter(([, u]) => u < 0.5);
for (const [v, u] of idle) console.log(`  ${v.path} / ${v.name}: busy only ${f(u * 100, 0)}% in one round (CPU per request: ${cpuUs[variants.indexOf(v)]!.map((x) => f(x, 1)).join(", ")})`);
if (jsonOut) {
  mkdirSync(dirname(jsonOut), { recursive: true });
  writeFileSync(jsonOut, JSON.stringify({ when: new Date().toISOString(), rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, n: N,
    raw: variants.map((v, i) => ({ path: v.path, name: v.name, spec: v.spec, cpuUs: cpuUs[i], utilisation: utilisation[i] })) }, null, 1));
}
console.log(`${((Date.now() - t0) / 1000).toFixed(0)} s in all.`);
