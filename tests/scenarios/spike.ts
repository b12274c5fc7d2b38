// The spike scenario: the combined module in front of three services while traffic jumps eightfold, against the
// no-filter twin with a mesh's default retry policy. Services: inventory (healthy, 10-30 ms), checkout (1% 503:
// flaky but healthy), payments (down: every request 503). Open-loop load (requests are fired on a schedule, not
// when the previous one answers), bounded in count and time, on 127.0.0.1 only.
import { Agent } from "undici";
import { startEnvoy, startUpstream, seriesValue, selectSeries, waitFor, notYet, type Envoy, type Upstream, type PromSeries } from "../harness/index.js";

export interface Phase { rps: number; seconds: number }

export const DEFAULT_PHASES: Phase[] = [
  { rps: 50, seconds: 3 },   // normal
  { rps: 400, seconds: 6 },  // spike
  { rps: 50, seconds: 3 },   // after
];

const SERVICES = ["inventory", "checkout", "payments"] as const;
type Service = (typeof SERVICES)[number];
/** Share of requests per service (out of 10). */
const MIX: Service[] = ["inventory", "inventory", "inventory", "inventory", "inventory", "checkout", "checkout", "checkout", "payments", "payments"];

export interface ServiceResult {
  /** Requests the schedule sent (answered or not). */
  requests: number;
  ok: number;
  status: Record<string, number>;
  upstreamAttempts: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
}

export interface RunResult {
  variant: string;
  seconds: number;
  services: Record<Service, ServiceResult>;
  /** Per service, from the module's series; undefined when the series does not exist (no module, or a stage missing). */
  breakerOpens: Record<Service, number | undefined>;
  breakerState: Record<Service, number | undefined>;
  retries: Record<Service, number | undefined>;
  /** Requests service-metrics counted (every response code summed), per service. */
  counted: Record<Service, number | undefined>;
  /** Local replies (breaker, deadline) service-metrics counted, per service. */
  localReplies: Record<Service, number | undefined>;
  retriesMade: number;
  series: PromSeries[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
}

/** Drives `envoy` with the phases; returns per-service client-side results. */
async function drive(envoy: Envoy, phases: Phase[]): Promise<Record<Service, { status: number[]; ms: number[] }>> {
  const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
  const out = Object.fromEntries(SERVICES.map((s) => [s, { status: [] as number[], ms: [] as number[] }])) as Record<Service, { status: number[]; ms: number[] }>;
  const pending: Promise<void>[] = [];
  let n = 0;
  const origin = envoy.url();
  for (const phase of phases) {
    const total = phase.rps * phase.seconds;
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / phase.rps;
      const wait = due - performance.now();
      // Pacing, not waiting for a condition: open-loop load fires each request at its scheduled time.
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const service = MIX[n % MIX.length];
      const user = `user-${n % 997}`;
      n++;
      const t0 = performance.now();
      pending.push(
        agent.request({ origin, path: "/", method: "GET", headers: { host: service, "x-user-id": user }, headersTimeout: 10_000, bodyTimeout: 10_000 })
          .then(async (r) => { await r.body.dump(); return r.statusCode; }, () => 0)
          .then((status) => { out[service].status.push(status); out[service].ms.push(performance.now() - t0); }),
      );
    }
  }
  await Promise.all(pending);
  await agent.close();
  return out;
}

/** Runs the scenario once against one Envoy config. */
export async function runSpike(variant: "resilience" | "baseline", phases = DEFAULT_PHASES, mode?: "process" | "container"): Promise<RunResult> {
  const ups: Record<string, Upstream> = {
    // Every 100th request fails: flaky, not failing.
    "checkout-stable": await startUpstream({ name: "checkout", respond: (_r, i) => (i % 100 === 99 ? { status: 503 } : { latencyMs: 5 + (i % 10) }) }),
    "checkout-canary": await startUpstream({ name: "checkout-canary" }),
    inventory: await startUpstream({ name: "inventory", respond: (_r, i) => ({ latencyMs: 10 + (i % 20) }) }),
    payments: await startUpstream({ name: "payments", status: 503 }),
  };
  const envoy = await startEnvoy({
    config: variant === "resilience" ? "envoy-configs/resilience.yaml" : "envoy-configs/resilience-baseline.yaml",
    wasm: variant === "resilience" ? { resilience: "build/resilience.wasm" } : undefined,
    clusters: ups, concurrency: 2, mode,
    // No canary in this scenario: checkout's numbers are one service's (its stable cluster), as in the twin.
    mutate: variant === "resilience" ? (cfg: any) => {
      const wasm = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config;
      const json = JSON.parse(wasm.configuration.value);
      json["traffic-split"].subsets = [{ name: "stable" }, { name: "canary", weight: 0 }];
      wasm.configuration.value = JSON.stringify(json);
    } : undefined,
  });
  try {
    const t0 = performance.now();
    const client = await drive(envoy, phases);
    const seconds = (performance.now() - t0) / 1000;
    const attempts: Record<Service, number> = {
      inventory: ups.inventory.hits.total,
      checkout: ups["checkout-stable"].hits.total + ups["checkout-canary"].hits.total,
      payments: ups.payments.hits.total,
    };
    const cluster: Record<Service, string> = { inventory: "inventory", checkout: "checkout-stable", payments: "payments" };
    const of = (series: PromSeries[], metric: string, s: Service, extra: Record<string, string> = {}) =>
      seriesValue(series, metric, { destination_service: cluster[s], ...extra });
    const countedOf = (series: PromSeries[], s: Service) => {
      const found = selectSeries(series, "resilience_requests_total", { reporter: "outbound", destination_service: cluster[s] });
      return found.length === 0 ? undefined : found.reduce((n, x) => n + x.value, 0);
    };
    // Counters are flushed on each worker's housekeeping tick: wait until every request is counted and every upstream
    // attempt is accounted for (attempts = requests - local replies + retries), not for a fixed time.
    const series = variant === "baseline" ? await envoy.promSeries() : await waitFor("the module's counters to account for every request and attempt", async () => {
      const now = await envoy.promSeries();
      const books = SERVICES.map((s) => {
        const requests = client[s].status.length;
        const admitted = requests - (of(now, "resilience_local_replies_total", s, { reporter: "outbound" }) ?? 0);
        return { s, requests, counted: countedOf(now, s), attempts: attempts[s], admittedPlusRetries: admitted + (of(now, "resilience_retry_budget_retries_total", s) ?? 0) };
      });
      return books.every((b) => b.counted === b.requests && b.admittedPlusRetries === b.attempts) ? now : notYet(books);
    }, { timeoutMs: 15_000 });
    const services = {} as Record<Service, ServiceResult>;
    const breakerOpens = {} as Record<Service, number | undefined>;
    const breakerState = {} as Record<Service, number | undefined>;
    const retries = {} as Record<Service, number | undefined>;
    const counted = {} as Record<Service, number | undefined>;
    const localReplies = {} as Record<Service, number | undefined>;
    for (const s of SERVICES) {
      const ms = [...client[s].ms].sort((a, b) => a - b);
      const status: Record<string, number> = {};
      for (const c of client[s].status) status[c] = (status[c] ?? 0) + 1;
      services[s] = {
        requests: client[s].status.length, ok: status["200"] ?? 0, status, upstreamAttempts: attempts[s],
        p50ms: percentile(ms, 0.5), p99ms: percentile(ms, 0.99), maxms: ms.at(-1) ?? NaN,
      };
      breakerOpens[s] = of(series, "resilience_outlier_breaker_opens_total", s);
      breakerState[s] = of(series, "resilience_outlier_breaker_state", s);
      retries[s] = of(series, "resilience_retry_budget_retries_total", s);
      counted[s] = countedOf(series, s);
      localReplies[s] = of(series, "resilience_local_replies_total", s, { reporter: "outbound" });
    }
    const retriesMade = SERVICES.reduce((sum, s) => sum + (retries[s] ?? 0), 0);
    return { variant, seconds, services, breakerOpens, breakerState, retries, counted, localReplies, retriesMade, series };
  } finally {
    await envoy.stop();
    for (const u of Object.values(ups)) await u.close();
  }
}

/** Requests the phases send to each service (the MIX cycles over the whole run). */
export function planned(phases = DEFAULT_PHASES): Record<Service, number> {
  const total = phases.reduce((n, p) => n + p.rps * p.seconds, 0);
  const out = Object.fromEntries(SERVICES.map((s) => [s, 0])) as Record<Service, number>;
  for (let i = 0; i < total; i++) out[MIX[i % MIX.length]]++;
  return out;
}

/** A table of both runs, for people. */
export function report(runs: RunResult[]): string {
  const lines = ["| variant | service | requests | 200 | other answers | upstream attempts | attempts/request | p50 ms | p99 ms | breaker opens |", "|---|---|---|---|---|---|---|---|---|---|"];
  for (const r of runs) {
    for (const s of SERVICES) {
      const x = r.services[s];
      const other = Object.entries(x.status).filter(([c]) => c !== "200").map(([c, n]) => `${c}:${n}`).join(" ") || "-";
      lines.push(`| ${r.variant} | ${s} | ${x.requests} | ${x.ok} | ${other} | ${x.upstreamAttempts} | ${(x.upstreamAttempts / x.requests).toFixed(2)} | ${x.p50ms.toFixed(0)} | ${x.p99ms.toFixed(0)} | ${r.variant === "baseline" ? "-" : (r.breakerOpens[s] ?? "none")} |`);
    }
  }
  return lines.join("\n");
}
