// The user's spike test on a small mesh (issue 13): a gateway and services each behind a sidecar, all real Envoys on
// 127.0.0.1 (--concurrency 1 each), under open-loop load with a tenfold spike, run three times with three policies:
//   naive   mesh defaults: 3 attempts on 5xx/reset/connect-failure, no timeout, no budget, no breaker, fixed canary weight
//   native  Envoy's best practice: route timeouts, retry_budget, outlier_detection (panic mode off), weighted clusters
//   bundle  the combined module as shipped in envoy-configs/gateway.yaml and sidecar.yaml (routes and clusters per service)
// Services (apps are scripted upstreams; their hit logs count upstream attempts):
//   healthy  5-20 ms, never fails                 flaky  1% 503, about 50% 503 during the spike
//   slow     latency climbs with the spike, one request in ten past the SLA     down  connection refused (no pod)
//   checkout 5-25 ms, with its v2 `canary` taking 20% of checkout's traffic: 30% of its requests fail from the spike on
// Each Envoy's tracing and access log are left out (no collector here; 2 cores): the same in all three runs.
import { Agent } from "undici";
import {
  freePorts, notYet, parsePrometheus, selectSeries, startEnvoy, startUpstream, waitFor,
  type Bootstrap, type Envoy, type EnvoyMode, type PromSeries, type Upstream, type UpstreamAction, type UpstreamRequest,
} from "../harness/index.js";
import { prng } from "../harness/upstream.js";

export const SERVICES = ["healthy", "flaky", "slow", "down", "checkout"] as const;
export type Service = (typeof SERVICES)[number];
export type Policy = "naive" | "native" | "bundle";
export const POLICIES: Policy[] = ["naive", "native", "bundle"];
export const POLICY_TITLE: Record<Policy, string> = {
  naive: "naive mesh defaults (3 attempts, no budget, no breaker)",
  native: "Envoy native best practice (timeouts, retry_budget, outlier_detection, weighted clusters)",
  bundle: "this bundle (combined module in the shipped gateway and sidecar)",
};

/** p99 objective per service, client side (ms). */
export const SLA_MS: Record<Service, number> = { healthy: 250, flaky: 300, slow: 400, down: 300, checkout: 300 };
/** Deadline and route timeout: 90% of the SLA, the rest left for the two hops and the client. */
export const deadlineMs = (s: Service): number => Math.round(SLA_MS[s] * 0.9);
/** The services the scenario makes truly fail during the spike: the only breakers that should open. */
export const FAILING: Service[] = ["down", "flaky"];
export const CANARY = "checkout-canary";
export const CANARY_WEIGHT = 20;
/** Clusters at the gateway: one per service, plus the canary's. */
export const CLUSTERS = [...SERVICES, CANARY] as const;
export type Cluster = (typeof CLUSTERS)[number];
/** The retry limit the user set (the shipped retry-budget): 20% of requests plus 10 per second, per destination. */
export const BUDGET = { ratio: 0.2, perSecond: 10 };

export interface Phase { name: "base" | "spike" | "after"; rps: number; seconds: number }
export interface Timing { baseSeconds: number; spikeSeconds: number; afterSeconds: number; baseRps: number }
export const DEFAULT_TIMING: Timing = { baseSeconds: 5, spikeSeconds: 10, afterSeconds: 5, baseRps: 30 };
/** The suite's shortened run: the same scenario, fewer seconds. */
export const SHORT_TIMING: Timing = { baseSeconds: 2, spikeSeconds: 5, afterSeconds: 2, baseRps: 30 };

export function phasesOf(t: Timing): Phase[] {
  return [
    { name: "base", rps: t.baseRps, seconds: t.baseSeconds },
    { name: "spike", rps: t.baseRps * 10, seconds: t.spikeSeconds },
    { name: "after", rps: t.baseRps, seconds: t.afterSeconds },
  ];
}

/** One client request as the load generator saw it (times in ms since the run's start). */
export interface ClientRecord { service: Service; sentMs: number; doneMs: number; status: number; by: string }

/** Gateway stats read every SAMPLE_MS while the load runs. */
export interface Sample {
  tMs: number;
  /** Router retries per cluster (cluster.<c>.upstream_rq_retry). */
  retries: Record<string, number>;
  /** Connect failures per cluster (the attempts that reached no app: `down`). */
  connectFailures: Record<string, number>;
  /** Breaker state per cluster: the module's 0 closed / 1 open / 2 half-open, or Envoy's ejected hosts (0/1). */
  breaker: Record<string, number>;
  /** Breaker openings so far per cluster: the module's opens, or Envoy's enforced ejections. */
  opens: Record<string, number>;
  /** The canary's weight in percent as the gateway routes by it (the module's gauge; the others: the route's fixed weight). */
  canaryWeight: number;
}

export interface RunData {
  policy: Policy;
  timing: Timing;
  /** Wall time the schedule took (s). */
  seconds: number;
  spikeStartMs: number;
  spikeEndMs: number;
  client: ClientRecord[];
  /** App hit times (ms since start) and statuses, per cluster. */
  hits: Record<string, Array<{ tMs: number; status: number }>>;
  samples: Sample[];
  /** The gateway's /stats/prometheus at the end (recommend-timeouts reads the bundle's). */
  final: PromSeries[];
}

const SAMPLE_MS = 250;
const TICK_MS = 5;

// ---- the apps -------------------------------------------------------------------------------------------------
/** Where the run is in its schedule: spike progress 0..1 while it lasts, -1 before, 2 after. */
class Clock {
  startMs = Number.POSITIVE_INFINITY;
  constructor(private readonly t: Timing) {}
  get spikeStart(): number { return this.startMs + this.t.baseSeconds * 1000; }
  get spikeEnd(): number { return this.spikeStart + this.t.spikeSeconds * 1000; }
  spike(now = Date.now()): number {
    if (now < this.spikeStart) return -1;
    if (now >= this.spikeEnd) return 2;
    return (now - this.spikeStart) / (this.spikeEnd - this.spikeStart);
  }
}

type HitLog = Record<string, Array<{ at: number; status: number }>>;

/** The apps; each logs every hit it gets (arrival time, the status it answers) into `log`. */
function apps(clock: Clock, log: HitLog): Record<Exclude<Cluster, "down">, Promise<Upstream>> {
  const flakyRoll = prng(13);
  const canaryFails = new Map<string, boolean>();
  const inSpike = (p: number) => p >= 0 && p <= 1;
  const ok = (latencyMs: number): UpstreamAction => ({ latencyMs });
  const logged = (name: string, script: (i: number, req: UpstreamRequest) => UpstreamAction) => {
    log[name] = [];
    return startUpstream({
      name,
      respond: (req, i) => {
        const action = script(i, req);
        log[name].push({ at: Date.now(), status: action.status ?? 200 });
        return action;
      },
    });
  };
  return {
    healthy: logged("healthy", (i) => ok(5 + (i % 16))),
    flaky: logged("flaky", (i) => ((inSpike(clock.spike()) ? flakyRoll() < 0.5 : i % 100 === 99) ? { status: 503 } : ok(5 + (i % 10)))),
    slow: logged("slow", (i) => {
      const p = clock.spike();
      if (!inSpike(p)) return ok(20 + (i % 20));
      // The body climbs to half the SLA; every tenth request climbs from half the SLA to 1.5 times it.
      return ok(i % 10 === 9 ? SLA_MS.slow * (0.5 + p) : 20 + (i % 20) + SLA_MS.slow * 0.5 * p);
    }),
    checkout: logged("checkout", (i) => ok(5 + (i % 20))),
    // A bad release: from the spike on, 3 requests in 10 fail, every attempt of them (keyed by x-request-id, which
    // retries keep), spread out so that no two failing requests follow each other.
    [CANARY]: logged(CANARY, (i, req) => {
      const id = String(req.headers["x-request-id"]);
      let fails = canaryFails.get(id);
      if (fails === undefined) {
        fails = clock.spike() >= 0 && canaryFails.size % 10 % 3 === 2;
        canaryFails.set(id, fails);
      }
      return fails ? { status: 503 } : ok(5 + (i % 20));
    }),
  } as Record<Exclude<Cluster, "down">, Promise<Upstream>>;
}

// ---- the configs ----------------------------------------------------------------------------------------------
type Hcm = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function hcms(cfg: Bootstrap): Hcm[] {
  return cfg.static_resources.listeners.map((l: Bootstrap) => l.filter_chains[0].filters[0].typed_config);
}

/** The shipped sidecar, tracing and access log left out; without the module for the naive and native runs. */
function sidecarMutate(policy: Policy) {
  return (cfg: Bootstrap) => {
    for (const hcm of hcms(cfg)) {
      delete hcm.tracing;
      delete hcm.access_log;
      if (policy !== "bundle") hcm.http_filters = hcm.http_filters.filter((f: Hcm) => f.name !== "envoy.filters.http.wasm");
    }
  };
}

const RETRY_ON = "5xx,reset,connect-failure";

/** The shipped gateway with one virtual host per service (matched by :authority) and one cluster per service. */
function gatewayMutate(policy: Policy) {
  return (cfg: Bootstrap) => {
    const [hcm] = hcms(cfg);
    delete hcm.tracing;
    delete hcm.access_log;
    const shippedRoutes = hcm.route_config.virtual_hosts[0].routes;
    const shippedRetry = shippedRoutes.at(-1).route.retry_policy;
    const clusters: Hcm[] = cfg.static_resources.clusters;
    const shippedCluster = clusters.find((c) => c.name === "service-a")!;
    const weighted = { weighted_clusters: { clusters: [{ name: "checkout", weight: 100 - CANARY_WEIGHT }, { name: CANARY, weight: CANARY_WEIGHT }] } };

    const route = (s: Service): Hcm[] => {
      if (policy === "bundle") {
        const canary = shippedRoutes[0];
        const routes = [{ match: { prefix: "/" }, route: { ...shippedRoutes.at(-1).route, cluster: s } }];
        return s === "checkout" ? [{ match: canary.match, route: { ...canary.route, cluster: CANARY } }, ...routes] : routes;
      }
      const retry = policy === "naive"
        ? { retry_on: RETRY_ON, num_retries: 2 }
        : { retry_on: RETRY_ON, num_retries: 2, retry_back_off: shippedRetry.retry_back_off };
      // Naive: no timeout at all (0s disables Envoy's 15 s default, as meshes do); native: the deadline.
      const timeout = policy === "naive" ? "0s" : `${deadlineMs(s) / 1000}s`;
      const target = s === "checkout" ? weighted : { cluster: s };
      return [{ match: { prefix: "/" }, route: { ...target, timeout, retry_policy: retry } }];
    };
    hcm.route_config.virtual_hosts = SERVICES.map((s) => ({ name: s, domains: [s, `${s}:*`], routes: route(s) }));

    const cluster = (name: Cluster): Hcm => {
      // The endpoint is the shipped one until the harness points it at this service's sidecar (or nothing, for down).
      const c: Hcm = { name, type: "STATIC", connect_timeout: "1s", typed_extension_protocol_options: shippedCluster.typed_extension_protocol_options,
        load_assignment: structuredClone(shippedCluster.load_assignment) };
      if (policy === "native") {
        c.circuit_breakers = { thresholds: [{ priority: "DEFAULT", retry_budget: { budget_percent: { value: BUDGET.ratio * 100 }, min_retry_concurrency: 3 } }] };
        c.outlier_detection = {
          consecutive_5xx: 5, interval: "1s", base_ejection_time: "5s", max_ejection_percent: 100,
          failure_percentage_threshold: 50, enforcing_failure_percentage: 100, failure_percentage_minimum_hosts: 1, failure_percentage_request_volume: 20,
        };
        // One host per cluster: with panic mode on, an ejected host would still get every request.
        c.common_lb_config = { healthy_panic_threshold: { value: 0 } };
      } else {
        // The budget (bundle) or nothing (naive) limits retries: Envoy's concurrent-retry cap is lifted, as meshes do.
        c.circuit_breakers = shippedCluster.circuit_breakers;
      }
      return c;
    };
    cfg.static_resources.clusters = [...CLUSTERS.map(cluster), ...clusters.filter((c) => c.name === "zipkin")];

    const wasm = hcm.http_filters.find((f: Hcm) => f.name === "envoy.filters.http.wasm");
    if (policy !== "bundle") {
      hcm.http_filters = hcm.http_filters.filter((f: Hcm) => f !== wasm);
      return;
    }
    const conf = wasm.typed_config.config.configuration;
    const json = JSON.parse(conf.value);
    // Deadlines per service from the SLA, keyed like service-metrics (by cluster), as recommend-timeouts prints them.
    json.deadline.destinationKey = "cluster";
    json.deadline.defaults = [...SERVICES.map((s) => ({ destination: s, ms: deadlineMs(s) })), { destination: CANARY, ms: deadlineMs("checkout") }];
    json["traffic-split"].revision = "checkout-v2";
    json["traffic-split"].destinations = ["checkout", CANARY];
    json["traffic-split"].subsets = [{ name: "stable" }, { name: "canary", weight: CANARY_WEIGHT }];
    conf.value = JSON.stringify(json);
  };
}

// ---- the mesh -------------------------------------------------------------------------------------------------
interface Mesh { gateway: Envoy; sidecars: Envoy[]; apps: Record<string, Upstream> }

async function startMesh(policy: Policy, clock: Clock, log: HitLog, mode?: EnvoyMode): Promise<Mesh> {
  const started = apps(clock, log);
  const up: Record<string, Upstream> = {};
  for (const [k, v] of Object.entries(started)) up[k] = await v;
  const wasm = policy === "bundle" ? { resilience: "build/resilience.wasm" } : undefined;
  const common = { concurrency: 1, mode, wasm, logLevel: "warning" as const };
  const withSidecar = CLUSTERS.filter((c) => c !== "down");
  // Started together (container mode pays a container start each); any that started are stopped if one fails.
  const starting = await Promise.allSettled(withSidecar.map((c) =>
    startEnvoy({ ...common, config: "envoy-configs/sidecar.yaml", clusters: { app: up[c] }, mutate: sidecarMutate(policy) })));
  const sidecars = starting.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  try {
    const failed = starting.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    // `down`'s pod is gone: nothing listens on its address, so every connection is refused.
    const [downPort] = await freePorts(1);
    const targets: Record<string, number> = { down: downPort };
    withSidecar.forEach((c, i) => (targets[c] = sidecars[i].port("inbound")));
    const gateway = await startEnvoy({ ...common, config: "envoy-configs/gateway.yaml", clusters: targets, mutate: gatewayMutate(policy) });
    return { gateway, sidecars, apps: up };
  } catch (e) {
    for (const s of sidecars) await s.stop();
    for (const u of Object.values(up)) await u.close();
    throw e;
  }
}

async function stopMesh(m: Mesh): Promise<void> {
  await m.gateway.stop();
  for (const s of m.sidecars) await s.stop();
  for (const u of Object.values(m.apps)) await u.close();
}

const STATS_FILTER = "upstream_rq_retry$|upstream_cx_connect_fail$|outlier_detection\\.ejections_(active|enforced_total)$|resilience_outlier_breaker_(state|opens_total)|resilience_traffic_split_weight_percent";

function sampleOf(policy: Policy, tMs: number, series: PromSeries[]): Sample {
  const s: Sample = { tMs, retries: {}, connectFailures: {}, breaker: {}, opens: {}, canaryWeight: CANARY_WEIGHT };
  for (const c of CLUSTERS) {
    const cl = { envoy_cluster_name: c };
    const one = (name: string, labels: Record<string, string>) => selectSeries(series, name, labels).reduce((n, x) => n + x.value, 0);
    s.retries[c] = one("envoy_cluster_upstream_rq_retry", cl);
    s.connectFailures[c] = one("envoy_cluster_upstream_cx_connect_fail", cl);
    if (policy === "bundle") {
      s.breaker[c] = one("resilience_outlier_breaker_state", { destination_service: c });
      s.opens[c] = one("resilience_outlier_breaker_opens_total", { destination_service: c });
    } else {
      // Envoy's outlier detection (configured in the native run only: the naive run's read 0).
      s.breaker[c] = one("envoy_cluster_outlier_detection_ejections_active", cl);
      s.opens[c] = one("envoy_cluster_outlier_detection_ejections_enforced_total", cl);
    }
  }
  if (policy === "bundle") {
    const w = selectSeries(series, "resilience_traffic_split_weight_percent", { subset: "canary" });
    if (w.length > 0) s.canaryWeight = w[0].value;
  }
  return s;
}

async function scrape(envoy: Envoy, filter?: string): Promise<PromSeries[]> {
  const res = await envoy.admin(filter ? `/stats/prometheus?filter=${encodeURIComponent(filter)}` : "/stats/prometheus");
  return parsePrometheus(res.body);
}

export interface RunOptions {
  timing?: Timing;
  mode?: EnvoyMode;
  /** Called about once a second with a one-line status. */
  progress?: (line: string) => void;
}

/** One run of the scenario with one policy. */
export async function runMesh(policy: Policy, opts: RunOptions = {}): Promise<RunData> {
  const timing = opts.timing ?? DEFAULT_TIMING;
  const clock = new Clock(timing);
  const log: HitLog = {};
  const mesh = await startMesh(policy, clock, log, opts.mode);
  const agent = new Agent({ keepAliveTimeout: 30_000, pipelining: 1 });
  try {
    const origin = mesh.gateway.url("edge");
    const client: ClientRecord[] = [];
    const samples: Sample[] = [];
    const pending = new Set<Promise<void>>();
    const phases = phasesOf(timing);
    const totalMs = phases.reduce((n, p) => n + p.seconds * 1000, 0);

    // The schedule: request k of a phase is due at phaseStart + k / rps, sent when due whatever earlier ones are doing.
    const due: Array<{ at: number }> = [];
    let offset = 0;
    for (const p of phases) {
      const n = p.rps * p.seconds;
      for (let k = 0; k < n; k++) due.push({ at: offset + (k * 1000) / p.rps });
      offset += p.seconds * 1000;
    }
    clock.startMs = Date.now();
    let sampling = false;
    const sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      const tMs = Date.now() - clock.startMs;
      scrape(mesh.gateway, STATS_FILTER).then((s) => samples.push(sampleOf(policy, tMs, s)), () => undefined).finally(() => (sampling = false));
    }, SAMPLE_MS);
    let lastProgress = 0;
    let next = 0;
    await new Promise<void>((resolve) => {
      // Pacing, not waiting for a condition: an open-loop generator fires each request at its scheduled time.
      const ticker = setInterval(() => {
        const now = Date.now() - clock.startMs;
        while (next < due.length && due[next].at <= now) {
          const n = next++;
          const service = SERVICES[n % SERVICES.length];
          const sentMs = Date.now() - clock.startMs;
          const p: Promise<void> = agent
            .request({ origin, path: `/${service}/${n}`, method: "GET", headers: { host: service, "x-user-id": `user-${n % 997}` }, headersTimeout: 15_000, bodyTimeout: 15_000 })
            .then(async (r) => { await r.body.dump(); return { status: r.statusCode, by: String(r.headers["x-upstream-name"] ?? "") }; }, () => ({ status: 0, by: "" }))
            .then(({ status, by }) => { client.push({ service, sentMs, doneMs: Date.now() - clock.startMs, status, by }); pending.delete(p); });
          pending.add(p);
        }
        if (opts.progress && now - lastProgress >= 1000) {
          lastProgress = now;
          const phase = phases[Math.min(phases.length - 1, phases.findIndex((_, i) => now < phases.slice(0, i + 1).reduce((a, x) => a + x.seconds * 1000, 0)))];
          const failed = client.filter((c) => c.status < 200 || c.status >= 300).length;
          opts.progress(`[${policy}] ${(now / 1000).toFixed(0).padStart(3)} / ${(totalMs / 1000).toFixed(0)} s  ${phase.name.padEnd(5)} ${String(phase.rps).padStart(4)} req/s  sent ${next}  answered ${client.length}  failed ${failed}  in flight ${pending.size}`);
        }
        if (next >= due.length) {
          clearInterval(ticker);
          resolve();
        }
      }, TICK_MS);
    });
    const seconds = (Date.now() - clock.startMs) / 1000;
    await Promise.all(pending);
    clearInterval(sampler);
    // The last sample after every answer: wait for the one in flight, then take it.
    await waitFor("the sampler to finish", () => (sampling ? notYet() : true), { timeoutMs: 5_000 });
    // The module's counters reach Envoy's stats on each worker's next sync: for the bundle, wait until service-metrics
    // has counted every request the clients sent (so what is read below is complete).
    const final = policy !== "bundle" ? await scrape(mesh.gateway) : await waitFor("the module to count every request", async () => {
      const now = await scrape(mesh.gateway);
      const counted = selectSeries(now, "resilience_requests_total", { reporter: "outbound" }).reduce((n, x) => n + x.value, 0);
      return counted === client.length ? now : notYet(`${counted} of ${client.length}`);
    }, { timeoutMs: 15_000 });
    samples.push(sampleOf(policy, Date.now() - clock.startMs, final));
    const hits: RunData["hits"] = {};
    for (const [c, l] of Object.entries(log)) hits[c] = l.map((h) => ({ tMs: h.at - clock.startMs, status: h.status }));
    return { policy, timing, seconds, spikeStartMs: timing.baseSeconds * 1000, spikeEndMs: (timing.baseSeconds + timing.spikeSeconds) * 1000, client, hits, samples, final };
  } finally {
    await agent.close();
    await stopMesh(mesh);
  }
}

/** The scenario in one sentence, for the tables and the report. */
export function describeScenario(t: Timing): string {
  const [base, spike, after] = phasesOf(t);
  // One Envoy per cluster's sidecar (down has none: its pod is gone) plus the gateway.
  return `Open-loop load through a gateway to five services each behind a sidecar (${CLUSTERS.length} Envoys, 127.0.0.1): ` +
    `${base.rps} req/s for ${base.seconds} s, a 10x spike of ${spike.rps} req/s for ${spike.seconds} s, ${after.rps} req/s for ${after.seconds} s, ` +
    `spread evenly over ${SERVICES.join(", ")}. During the spike flaky fails about 50%, slow climbs past its SLA, the ${CANARY} ` +
    `(${CANARY_WEIGHT}% of checkout) fails 30% of its requests; down refuses connections throughout. ` +
    `SLAs (p99): ${SERVICES.map((s) => `${s} ${SLA_MS[s]} ms`).join(", ")}; deadlines and route timeouts at 90% of them.`;
}

/** The three runs, one after the other (each on its own mesh). */
export async function runAllPolicies(opts: RunOptions = {}): Promise<RunData[]> {
  const runs: RunData[] = [];
  for (const policy of POLICIES) runs.push(await runMesh(policy, opts));
  return runs;
}
