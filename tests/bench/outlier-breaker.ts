// `node --import tsx tests/bench/outlier-breaker.ts`: what an open breaker's answer costs against Envoy's own
// direct_response of the same 503 (and the bare Wasm floor), and what the closed path adds to a proxied request,
// measured in one run: Envoy --concurrency 1 pinned to core 0, wrk -t1 pinned to core 1, keep-alive connections,
// rounds alternating between variants, medians. The machine is shared: the figures are indicative.
import { spawnSync } from "node:child_process";
import { loadBootstrap, request, startEnvoy, startUpstream, type Bootstrap, type Envoy, type StartEnvoyOptions } from "../harness/index.js";
import { DEFAULT_BENCH, hcm } from "./lib.js";

const FILTER = "envoy-configs/outlier-breaker.yaml";
const BASELINE = "envoy-configs/outlier-breaker-baseline.yaml";
const DIRECT = "envoy-configs/outlier-breaker-direct-response.yaml";
const DAY_MS = 86_400_000;
/** Port of the loopback "upstream" listener added for the proxied variants (the harness moves it with the cluster). */
const LOOPBACK_PORT = 10001;

interface Variant {
  name: string;
  envoy: StartEnvoyOptions;
  /** Status every response must have. */
  status: 200 | 503;
  /** Run once before measuring (e.g. to open the breaker). */
  prepare?: (e: Envoy) => Promise<void>;
}

function setConfig(cfg: Bootstrap, value: object): void {
  hcm(cfg).http_filters[0].typed_config.config.configuration.value = JSON.stringify(value);
}

/** The empty Wasm filter built on the same binding (the floor of having a Wasm filter at all), in front of `cfg`'s routes. */
function emptyWasm(cfg: Bootstrap): void {
  const wasm = hcm(cfg).http_filters[0].typed_config.config;
  wasm.name = "empty-filter";
  wasm.root_id = "empty-filter";
  wasm.vm_config.code.local.filename = "build/fixtures/empty-filter.wasm";
  delete wasm.configuration;
}

/** The direct_response bootstrap with the outlier-breaker bootstrap's Wasm filter in front of its route. */
function withFilterOf(cfg: Bootstrap, filterCfg: Bootstrap): void {
  hcm(cfg).http_filters.unshift(structuredClone(hcm(filterCfg).http_filters[0]));
}

/** Adds a listener answering 200 itself and points service-a at it: a proxied request without an outside upstream. */
function loopbackUpstream(cfg: Bootstrap): void {
  const upstream = structuredClone(cfg.static_resources.listeners[0]);
  upstream.name = "loopback-upstream";
  upstream.address.socket_address.port_value = LOOPBACK_PORT;
  const h = upstream.filter_chains[0].filters[0].typed_config;
  h.stat_prefix = "loopback";
  h.http_filters = h.http_filters.filter((f: any) => f.name !== "envoy.filters.http.wasm");
  h.route_config = { virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }] }] };
  cfg.static_resources.listeners.push(upstream);
  const a = cfg.static_resources.clusters.find((c: any) => c.name === "service-a");
  a.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = LOOPBACK_PORT;
}

/** wrk adds its own Host header unless one spelled exactly "Host" is given: a lower-case one would make two. */
function wrk(url: string, seconds: number, connections: number): { rps: number; p50us: number; requests: number; non2xx: number } {
  const r = spawnSync("taskset", ["-c", "1", "wrk", "-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-H", "Host: service-a", url], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const p50 = /50%\s+([\d.]+)(us|ms|s)/.exec(r.stdout);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]),
    p50us: p50 ? Number(p50[1]) * { us: 1, ms: 1000, s: 1e6 }[p50[2] as "us" | "ms" | "s"] : NaN,
    requests: Number(/(\d+) requests in/.exec(r.stdout)?.[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function run(title: string, variants: Variant[]): Promise<void> {
  const { rounds, seconds, connections } = DEFAULT_BENCH;
  const envoys: Envoy[] = [];
  try {
    for (const v of variants) {
      const e = await startEnvoy({ ...v.envoy, concurrency: 1, mode: "process" });
      envoys.push(e);
      const pinned = spawnSync("taskset", ["-a", "-p", "-c", "0", String(e.pid)], { encoding: "utf8" });
      if (pinned.status !== 0) throw new Error(`taskset failed: ${pinned.stderr}`);
      await v.prepare?.(e);
    }
    const rps: number[][] = variants.map(() => []);
    const p50: number[][] = variants.map(() => []);
    for (let round = -1; round < rounds; round++) {
      variants.forEach((v, i) => {
        const r = wrk(envoys[i]!.url(), round < 0 ? 1 : seconds, connections);
        const wrong = v.status === 200 ? r.non2xx : r.requests - r.non2xx;
        if (wrong !== 0) throw new Error(`${v.name}: ${wrong} of ${r.requests} responses were not ${v.status}`);
        if (round < 0) return; // warm-up
        rps[i]!.push(r.rps);
        p50[i]!.push(r.p50us);
      });
    }
    const base = 1e6 / median(rps[0]!);
    console.log(`\n${title}`);
    console.log(`Envoy --concurrency 1 on core 0, wrk -t1 -c${connections} on core 1, ${rounds} alternating rounds of ${seconds}s, medians`);
    console.log("| variant | req/s | x first | Envoy CPU us/request | added us | p50 us |");
    console.log("|---|---|---|---|---|---|");
    variants.forEach((v, i) => {
      const r = median(rps[i]!);
      console.log(`| ${v.name} | ${r.toFixed(0)} | ${(r / median(rps[0]!)).toFixed(2)} | ${(1e6 / r).toFixed(1)} | ${(1e6 / r - base).toFixed(1)} | ${median(p50[i]!).toFixed(0)} |`);
    });
  } finally {
    for (const e of envoys) await e.stop();
  }
}

// Open: the breaker trips on one failure and stays open a day; every measured request gets its 503.
const failing = await startUpstream({ status: 500 });
try {
  const filterCfg = loadBootstrap(FILTER);
  await run("outlier-breaker: an open breaker's answer against Envoy's own direct_response 503", [
    { name: "direct_response 503 (Envoy, no Wasm)", envoy: { config: DIRECT }, status: 503 },
    {
      name: "empty Wasm filter + direct_response 503 (floor)",
      envoy: { config: DIRECT, mutate: (c) => { withFilterOf(c, filterCfg); emptyWasm(c); } },
      status: 503,
    },
    {
      name: "outlier-breaker open (503 + retry-after)",
      envoy: { config: FILTER, clusters: { "service-a": failing, "service-b": failing }, mutate: (c) => setConfig(c, { consecutiveFailures: 1, baseOpenMs: DAY_MS, maxOpenMs: DAY_MS, jitter: 0 }) },
      status: 503,
      prepare: async (e) => {
        await request(`${e.url()}/`, { headers: { host: "service-a" } });
        const r = await request(`${e.url()}/`, { headers: { host: "service-a" } });
        if (r.headers["x-breaker-state"] !== "open") throw new Error(`the breaker did not open: ${r.status}`);
      },
    },
  ]);
} finally {
  await failing.close();
}

// Closed: a request proxied to a loopback listener that answers 200, with and without the filter.
await run("outlier-breaker: the closed path on a proxied request (upstream = a loopback listener answering 200)", [
  { name: "no filter (baseline twin)", envoy: { config: BASELINE, mutate: loopbackUpstream }, status: 200 },
  { name: "empty Wasm filter (floor)", envoy: { config: FILTER, mutate: (c) => { loopbackUpstream(c); emptyWasm(c); } }, status: 200 },
  { name: "outlier-breaker closed", envoy: { config: FILTER, mutate: loopbackUpstream }, status: 200 },
]);

// Host calls per request (the release module in the emulator, two workers).
{
  const { Host } = await import("../emulator/index.js");
  const host = new Host({ vmId: "resilience" });
  const vms = host.startVms("build/outlier-breaker.wasm", 2, { pluginConfig: '{"consecutiveFailures": 3}', rootId: "outlier-breaker" });
  const one = (i: number, status: number) => {
    const s = vms[i & 1]!.newStream();
    s.requestHeaders({ ":authority": "a.svc", ":path": "/" }, true);
    if (s.requestForwarded) s.responseHeaders({ ":status": String(status) }, true);
    s.finish();
    return s.hostCallCount;
  };
  one(0, 200);
  const closed = one(0, 200);
  for (let i = 0; i < 3; i++) one(i, 500);
  const open = one(0, 200);
  const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
  console.log(`\nhost calls per request: closed ${total(closed)} ${JSON.stringify(closed)}`);
  console.log(`                        open ${total(open)} ${JSON.stringify(open)}`);
}
