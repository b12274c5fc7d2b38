// `node --import tsx tests/bench/traffic-split.ts`: what the traffic-split filter costs against Envoy's native split
// (envoy-configs/traffic-split-baseline.yaml: weighted_clusters 70/30 + a header-match route), a plain route and the
// empty Wasm filter, in one run. Every variant proxies to a loopback listener of the same Envoy that answers 200, so
// Envoy (--concurrency 1, core 0) does all the work and wrk (core 1) only drives it. Besides throughput, it reads
// Envoy's own CPU time per request from /proc (what throughput means only when Envoy has its core to itself). The
// machine is shared: the figures are indicative; compare them within one run only.
import { readFileSync } from "node:fs";
import type { Bootstrap, Envoy, StartEnvoyOptions } from "../harness/index.js";
import { DEFAULT_BENCH, emptyWasm, hcm, loopbackUpstream, wrk, median, startPinnedEnvoy } from "./lib.js";

const FILTER = "envoy-configs/traffic-split.yaml";
const NATIVE = "envoy-configs/traffic-split-baseline.yaml";
/** One route to the stable cluster: no split at all. */
function plainRoute(cfg: Bootstrap): void {
  loopbackUpstream(cfg);
  hcm(cfg).route_config.virtual_hosts[0].routes = [{ match: { prefix: "/" }, route: { cluster: "stable", timeout: "5s" } }];
}

/** The filter's bootstrap with the empty Wasm filter (same binding) in place of traffic-split: the floor of any Wasm filter. */
function floor(cfg: Bootstrap): void {
  loopbackUpstream(cfg);
  emptyWasm(cfg);
}

/** The shipped filter configuration without its sticky key: the split is drawn per request. */
function perRequest(cfg: Bootstrap): void {
  loopbackUpstream(cfg);
  const plugin = hcm(cfg).http_filters[0].typed_config.config.configuration;
  const json = JSON.parse(plugin.value);
  delete json.stickyBy;
  plugin.value = JSON.stringify(json);
}

interface Variant {
  name: string;
  envoy: StartEnvoyOptions;
}

/** User + system CPU seconds of a process so far (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Alternating rounds over the variants; per variant the median req/s and the median Envoy CPU us per request. */
async function run(variants: Variant[], wrkArgs: string[]): Promise<{ rps: number; cpuUs: number }[]> {
  const { rounds, seconds } = DEFAULT_BENCH;
  const envoys: Envoy[] = [];
  try {
    for (const v of variants) {
      const e = await startPinnedEnvoy(v.envoy);
      envoys.push(e);
    }
    const rps: number[][] = variants.map(() => []);
    const cpu: number[][] = variants.map(() => []);
    for (let round = -1; round < rounds; round++) {
      envoys.forEach((e, i) => {
        const before = cpuSeconds(e.pid!);
        const r = wrk(e.url(), { ...DEFAULT_BENCH, seconds: round < 0 ? 1 : seconds }, wrkArgs);
        if (round < 0) return; // warm-up: JIT, connection pools
        rps[i]!.push(r.rps);
        cpu[i]!.push(((cpuSeconds(e.pid!) - before) * 1e6) / (r.rps * seconds));
      });
    }
    return variants.map((_, i) => ({ rps: median(rps[i]!), cpuUs: median(cpu[i]!) }));
  } finally {
    for (const e of envoys) await e.stop();
  }
}

// wrk sends one user id (so one subset for the filter; the native split alternates 70/30 at random): every request
// still pays the rule check, the hash, the header write and the route re-selection.
const variants: Variant[] = [
  { name: "plain route, no filter", envoy: { config: NATIVE, mutate: plainRoute } },
  { name: "native weighted_clusters 70/30 + header match (traffic-split-baseline.yaml)", envoy: { config: NATIVE, mutate: loopbackUpstream } },
  { name: "empty Wasm filter + the filter's routes (floor)", envoy: { config: FILTER, mutate: floor } },
  { name: "traffic-split, sticky by x-user-id (traffic-split.yaml)", envoy: { config: FILTER, mutate: loopbackUpstream } },
  { name: "traffic-split, per-request split (no stickyBy)", envoy: { config: FILTER, mutate: perRequest } },
];
const results = await run(variants, ["-H", "x-user-id: user-42"]);
const { rounds, seconds, connections } = DEFAULT_BENCH;
const native = results[1]!;
console.log("\ntraffic-split: cost per proxied request against Envoy's native weighted_clusters + header match");
console.log(`Envoy --concurrency 1 on core 0, wrk -t1 -c${connections} on core 1, ${rounds} alternating rounds of ${seconds}s, medians`);
console.log("| variant | req/s | x native | Envoy CPU us/request | vs native us |");
console.log("|---|---|---|---|---|");
variants.forEach((v, i) => {
  const r = results[i]!;
  console.log(`| ${v.name} | ${r.rps.toFixed(0)} | ${(r.rps / native.rps).toFixed(2)} | ${r.cpuUs.toFixed(1)} | ${(r.cpuUs - native.cpuUs).toFixed(1)} |`);
});

// Host calls per request (the release module in the emulator).
{
  const { Host } = await import("../emulator/index.js");
  const { readFileSync } = await import("node:fs");
  const { parse } = await import("yaml");
  const shipped = parse(readFileSync(FILTER, "utf8"));
  const pluginConfig = hcm(shipped).http_filters[0].typed_config.config.configuration.value;
  const host = new Host({ vmId: "resilience" });
  const [vm] = host.startVms("build/traffic-split.wasm", 1, { pluginConfig, rootId: "traffic-split" });
  const one = () => {
    const s = vm!.newStream();
    s.requestHeaders({ ":authority": "app", ":path": "/", ":method": "GET", "x-user-id": "user-42" }, true);
    s.responseHeaders({ ":status": "200" }, true);
    s.finish();
    return s;
  };
  one(); // seeds the module's random generator (one random_get per VM)
  const s = one();
  const total = Object.values(s.hostCallCount).reduce((a, b) => a + b, 0);
  console.log(`\nhost calls per request (shipped config, sticky user, 200): ${total} ${JSON.stringify(s.hostCallCount)}`);
}
