// The attacks of issue 10, each as one function asserting the behaviour after the fix: what a hostile caller sends, and
// what the upstream, the status codes, the clock and the metrics must show. Destinations are named like their clusters,
// so a metric's destination_service label is the same whether state is keyed by authority or by cluster.
import assert from "node:assert/strict";
import { seriesValue, selectSeries, waitFor, waitUntil, type Envoy } from "../../harness/index.js";
import { abandonH1, resetH2, send, sendMany, slowBody, type Answer, type Farm } from "./clients.js";

export interface Ctx {
  envoy: Envoy;
  farm: Farm;
}

const DEADLINE = "x-resilience-deadline-ms";
const statuses = (answers: Answer[]) => answers.map((a) => a.status);
const breakerAnswer = (a: Answer) => a.status === 503 && a.headers["x-breaker-state"] !== undefined;

async function metric(envoy: Envoy, name: string, labels: Record<string, string>): Promise<number | undefined> {
  return seriesValue(await envoy.promSeries(), name, labels);
}

/** Polls `check` for `ms`: it must hold at every look (a state that must not change, observed over a window). */
export async function stays(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  do {
    assert.ok(await check(), `${what} no longer held`);
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < end);
}

/** The breaker of `cluster` never opened: no open counted, state closed (or never defined). */
async function breakerNeverOpened(envoy: Envoy, cluster: string): Promise<void> {
  const labels = { destination_service: cluster };
  assert.equal((await metric(envoy, "resilience_outlier_breaker_opens_total", labels)) ?? 0, 0, `${cluster}: breaker opens`);
  assert.equal((await metric(envoy, "resilience_outlier_breaker_state", labels)) ?? 0, 0, `${cluster}: breaker state`);
}

/** 1: a healthy 60 ms upstream; 12 requests with a 10 ms budget get 504; afterwards normal requests get 200. */
export async function shortDeadline({ envoy, farm }: Ctx, host: string, cluster = host): Promise<Answer[]> {
  farm.behave(cluster, () => ({ latencyMs: 60 }));
  const short = await sendMany(12, envoy, host, { path: "/short", headers: { [DEADLINE]: "10" } });
  assert.deepEqual(statuses(short), Array(12).fill(504), "the caller's own 10 ms budget expires");
  const normalHits = () => farm.upstreams[cluster]!.hits.byPath["/normal"] ?? 0;
  const before = normalHits();
  const normal = await sendMany(5, envoy, host, { path: "/normal" });
  assert.deepEqual(normal.map((a) => `${a.status}${a.headers["x-breaker-state"] ? ":" + a.headers["x-breaker-state"] : ""}`), Array(5).fill("200"));
  assert.equal(normalHits(), before + 5, "every normal request reached the upstream");
  await breakerNeverOpened(envoy, cluster);
  return [...short, ...normal];
}

/** 1 (retry-budget): after caller-shortened timeouts the destination's effective ratio stays the configured one. */
export async function budgetRatioUntouched({ envoy }: Ctx, cluster: string, permille: number, answers: Answer[]): Promise<void> {
  const labels = { destination_service: cluster };
  // What passed every stage: the router's answers (a 504 the deadline stage answers itself never reaches the budget).
  const routed = answers.filter((a) => a.status === 200 || a.body === "upstream request timeout").length;
  assert.ok(routed >= 5 + 6, `${routed} of the requests reached the router`);
  // The budget counted at least 6 timeouts beside the 5 successes: counted as failures, they would halve the ratio.
  await envoy.waitForSeries("resilience_retry_budget_requests_total", labels, 5 + 6);
  const read = () => metric(envoy, "resilience_retry_budget_effective_ratio_permille", labels);
  await waitUntil(`${cluster}'s effective ratio published`, read, (v) => v !== undefined);
  await stays(`${cluster}'s effective ratio is ${permille} permille`, async () => (await read()) === permille, 1_500);
}

/** Sends until the breaker answers (at most 20); returns how many requests that took. */
async function openBreaker(envoy: Envoy, host: string): Promise<number> {
  for (let i = 1; i <= 20; i++) if (breakerAnswer(await send(envoy, host))) return i;
  assert.fail(`${host}: the breaker never answered within 20 failing requests`);
}

/**
 * 2: after the breaker opened, other spellings of the same destination are refused too, never sent upstream.
 * `unroutable`: spellings the route table serves with no route (404, which never reaches the upstream either).
 */
export async function spellings({ envoy, farm }: Ctx, host: string, cluster: string, maxAttempts: number, unroutable: string[] = []): Promise<void> {
  farm.behave(cluster, () => ({ status: 500 }));
  await openBreaker(envoy, host);
  const hits = farm.hits(cluster);
  // One request more may pass: a failure is recorded at on_log, after its answer left, so the next request can overtake it.
  assert.ok(hits <= maxAttempts, `${cluster} received ${hits} attempts before the breaker opened (at most ${maxAttempts})`);
  const upper = host.toUpperCase();
  for (const spelling of [upper, `${host}:8080`, `${host}.`, `${upper}.:80`]) {
    const answers = await sendMany(5, envoy, spelling);
    const refused = (a: Answer) => breakerAnswer(a) || (unroutable.includes(spelling) && a.status === 404);
    assert.ok(answers.every(refused), `${spelling}: ${answers.map((a) => `${a.status}:${a.headers["x-breaker-state"] ?? ""}`)}`);
  }
  assert.equal(farm.hits(cluster), hits, "no spelling reached the failing upstream");
}

/** 3: 300 made-up Hosts (404, never sent upstream), then a real always-failing destination. */
export async function squat({ envoy, farm }: Ctx, host: string, checks: { breakerAttempts?: number; budget?: boolean; metrics?: boolean }): Promise<void> {
  const total = () => Object.keys(farm.upstreams).reduce((n, c) => n + farm.hits(c), 0);
  const before = total();
  const salt = Math.random().toString(36).slice(2, 8);
  for (let i = 0; i < 300; i++) {
    const a = await send(envoy, `squat-${salt}-${i}.example`);
    assert.equal(a.status, 404, `made-up host ${i}`);
  }
  assert.equal(total(), before, "no made-up host reached an upstream");
  farm.behave(host, () => ({ status: 500 }));
  const answers = await sendMany(20, envoy, host);
  const labels = { destination_service: host };
  if (checks.breakerAttempts !== undefined) {
    assert.ok(farm.hits(host) <= checks.breakerAttempts, `${host} received ${farm.hits(host)} attempts (breaker opens after ${checks.breakerAttempts})`);
    assert.ok(answers.slice(-5).every(breakerAnswer), `the last answers came from the breaker: ${statuses(answers)}`);
  }
  // The budget counts what reached its stage (in the combined module the breaker answers first once open), less the
  // first request per worker where the split cleared the route cache before a completion taught the worker its cluster.
  const budgeted = answers.filter((a) => !breakerAnswer(a)).length;
  if (checks.budget) await envoy.waitForSeries("resilience_retry_budget_requests_total", labels, (v) => v !== undefined && v >= budgeted - 2 && v <= budgeted);
  if (checks.metrics) {
    // Its own series (before the fix it was folded into "other"); exact counting is countedExactly's case.
    const own = async () => selectSeries(await envoy.promSeries(), "resilience_requests_total", { ...labels, response_code: "500" }).reduce((n, x) => n + x.value, 0);
    await waitUntil(`${host}'s own 500 series (any flags)`, own, 1);
    const services = new Set(selectSeries(await envoy.promSeries(), "resilience_requests_total").map((s) => s.labels.destination_service));
    // maxServices (100) names plus "other" and "unknown": the directory's bound whatever callers send.
    assert.ok(services.size <= 102, `${services.size} destination_service values`);
  }
}

/** 4: a 1 s route timeout to a 3 s upstream: a 15 s budget ends at ~1 s; grpc-timeout 100m beside it ends at ~100 ms. */
export async function extendDeadline({ envoy, farm }: Ctx, host: string, cluster: string, boundMs: number): Promise<void> {
  farm.behave(cluster, () => ({ latencyMs: 3_000 }));
  const long = await send(envoy, host, { headers: { [DEADLINE]: "15000" } });
  assert.equal(long.status, 504);
  assert.ok(long.ms >= boundMs - 100 && long.ms < boundMs + 1_200, `a 15 s ask ended after ${long.ms.toFixed(0)} ms (bound ${boundMs} ms)`);
  const grpc = await send(envoy, host, { headers: { [DEADLINE]: "15000", "grpc-timeout": "100m" } });
  assert.ok(grpc.ms < 900, `grpc-timeout 100m with a 15 s header ended after ${grpc.ms.toFixed(0)} ms`);
  assert.ok(grpc.status === 504 || grpc.headers["grpc-status"] === "4", `status ${grpc.status}`);
}

/** 6: spoofed timeout headers (x-envoy-* and a deadline beyond the bound) do not lengthen the route's bound. */
export async function spoofedTimeouts({ envoy, farm }: Ctx, host: string, cluster: string, boundMs: number): Promise<void> {
  farm.behave(cluster, () => ({ latencyMs: 3_000 }));
  const a = await send(envoy, host, {
    headers: { [DEADLINE]: "999999999", "x-envoy-upstream-rq-timeout-ms": "10000", "x-envoy-expected-rq-timeout-ms": "10000", "x-envoy-upstream-rq-per-try-timeout-ms": "10000" },
  });
  assert.equal(a.status, 504);
  assert.ok(a.ms < boundMs + 1_200, `spoofed timeouts: ended after ${a.ms.toFixed(0)} ms (bound ${boundMs} ms)`);
}

/** 5: while half-open, three slow-body requests do not keep others failing; the breaker closes once the upstream recovers. */
export async function halfOpenHog({ envoy, farm }: Ctx, host: string): Promise<void> {
  let healthy = false;
  farm.behave(host, () => ({ status: healthy ? 200 : 500 }));
  await openBreaker(envoy, host);
  healthy = true;
  const labels = { destination_service: host };
  await envoy.waitForSeries("resilience_outlier_breaker_state", labels, (v) => v === 2, { timeoutMs: 15_000 });
  const active = (await envoy.stat("http.ingress.downstream_rq_active")) ?? 0;
  const hogs = [await slowBody(envoy, host), await slowBody(envoy, host), await slowBody(envoy, host)];
  try {
    await envoy.waitForStat("http.ingress.downstream_rq_active", active + 3);
    const t0 = Date.now();
    await waitFor("a normal request answered 200 while three bodies are withheld", async () => ((await send(envoy, host)).status === 200 ? true : undefined), {
      timeoutMs: 15_000, intervalMs: 200,
    });
    assert.ok(Date.now() - t0 < 15_000);
    // Closing takes halfOpenSuccesses successful probes: keep sending while waiting for the closed state.
    const state = async () => {
      assert.equal((await send(envoy, host)).status, 200, "once answered, normal requests keep being answered");
      return (await metric(envoy, "resilience_outlier_breaker_state", labels)) === 0 ? true : undefined;
    };
    await waitFor("the breaker closed on the recovered upstream", state, { timeoutMs: 10_000, intervalMs: 200 });
  } finally {
    for (const h of hogs) h.close();
    // Their bodies arrive now: wait until they are answered, so their upstream hits land within this test.
    await envoy.waitForStat("http.ingress.downstream_rq_active", (v) => (v ?? 0) <= active);
  }
}

/** 6: a client's routing header picks no subset: every request reaches the subset the split chose. */
export async function spoofedSubset({ envoy, farm }: Ctx, host: string, stable: string, canary: string, headers: Record<string, string> = {}): Promise<void> {
  farm.behave(stable, () => ({}));
  farm.behave(canary, () => ({}));
  const before = farm.hits(canary);
  const answers = await sendMany(20, envoy, host, { headers: { "x-traffic-subset": "canary", ...headers } });
  assert.deepEqual(statuses(answers), Array(20).fill(200));
  assert.equal(farm.hits(canary), before, "no spoofed request reached the canary");
}

/** A sticky user the split sends to `stable` (found by asking without any spoofed header). */
export async function stableUser({ envoy }: Ctx, host: string, stable: string): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const user = `user-${i}`;
    const a = await send(envoy, host, { headers: { "x-user-id": user } });
    if (JSON.parse(a.body).upstream === stable) return user;
  }
  assert.fail("no user among 50 lands on the stable subset");
}

/** 6: spoofed x-envoy retry headers do not raise retries past the filter's grant (maxRetries 2 by default). */
export async function spoofedRetries({ envoy, farm }: Ctx, host: string, maxRetries: number, cluster = host): Promise<void> {
  farm.behave(cluster, () => ({ status: 503 }));
  const before = farm.hits(cluster);
  const answers = await sendMany(10, envoy, host, { headers: { "x-envoy-max-retries": "10", "x-envoy-retry-on": "5xx,reset,gateway-error", "x-envoy-retriable-status-codes": "503" } });
  assert.deepEqual(statuses(answers), Array(10).fill(503));
  const attempts = farm.hits(cluster) - before;
  assert.ok(attempts > 10, `the budget granted retries (${attempts} attempts), so the cap, not a refusal, is what held`);
  assert.ok(attempts <= 10 * (1 + maxRetries), `${attempts} upstream attempts for 10 requests (at most ${10 * (1 + maxRetries)})`);
}

/** 6: a client's fallback header neither picks the fallback route while closed nor reaches the primary while open. */
export async function spoofedFallback({ envoy, farm }: Ctx, host: string, fallback: string, header: string): Promise<void> {
  farm.behave(host, () => ({}));
  farm.behave(fallback, () => ({}));
  const closed = await sendMany(5, envoy, host, { headers: { [header]: "open" } });
  assert.deepEqual(statuses(closed), Array(5).fill(200));
  assert.equal(farm.hits(fallback), 0, "while closed, the client's fallback header picked no route");
  farm.behave(host, () => ({ status: 500 }));
  for (let i = 0; i < 20 && farm.hits(fallback) === 0; i++) await send(envoy, host);
  assert.ok(farm.hits(fallback) > 0, "the breaker opened and re-routed to the fallback");
  const primary = farm.hits(host);
  for (const value of ["closed", "", "0"]) await send(envoy, host, { headers: { [header]: value } });
  assert.equal(farm.hits(host), primary, "while open, no spoofed fallback value reached the failing primary");
}

/** 7: callers drop (HTTP/1 close) or reset (HTTP/2) requests to a healthy slow upstream: nothing opens or rolls back. */
export async function callerResets({ envoy, farm }: Ctx, host: string, cluster: string, n: number, headers: Record<string, string> = {}): Promise<void> {
  farm.behave(cluster, (req) => ({ latencyMs: req.path === "/slow" ? 1_500 : 0 }));
  const up = farm.upstreams[cluster]!;
  for (let i = 0; i < n; i++) {
    const arrived = up.waitForHits(up.hits.total + 1);
    await (i % 2 === 0 ? abandonH1 : resetH2)(envoy, host, "/slow", arrived, headers);
  }
  await envoy.waitForStat("http.ingress.downstream_rq_active", (v) => (v ?? 0) === 0);
  const normal = await sendMany(5, envoy, host, { path: "/fast", headers });
  assert.deepEqual(statuses(normal), Array(5).fill(200));
  await breakerNeverOpened(envoy, cluster);
}

/** 1 and 7 (traffic-split): the canary is not rolled back, and the next canary request still reaches it. */
export async function canaryNotRolledBack({ envoy, farm }: Ctx, host: string, canary: string, headers: Record<string, string>, minRequests: number): Promise<void> {
  await envoy.waitForSeries("resilience_traffic_split_requests_total", { subset: "canary" }, minRequests);
  const rolledBack = async () => (await metric(envoy, "resilience_traffic_split_rolled_back", { subset: "canary" })) ?? 0;
  await stays("the canary is not rolled back", async () => (await rolledBack()) === 0, 1_500);
  farm.behave(canary, () => ({}));
  const before = farm.hits(canary);
  assert.equal((await send(envoy, host, { headers })).status, 200);
  assert.equal(farm.hits(canary), before + 1, "the canary still receives its traffic");
}

/** Metrics: every request a routed destination answered is counted under that destination, from the first one on. */
export async function countedExactly({ envoy, farm }: Ctx, host: string): Promise<void> {
  farm.behave(host, () => ({}));
  const answers = await sendMany(10, envoy, host);
  assert.deepEqual(statuses(answers), Array(10).fill(200));
  await envoy.waitForSeries("resilience_requests_total", { destination_service: host, response_code: "200" }, (v) => v === 10);
  const elsewhere = selectSeries(await envoy.promSeries(), "resilience_requests_total").filter((s) => s.labels.destination_service !== host && s.labels.response_code === "200");
  assert.deepEqual(elsewhere.map((s) => `${s.labels.destination_service}: ${s.value}`), [], "no 200 counted under another destination");
}
