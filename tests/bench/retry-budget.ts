// `node --import tsx tests/bench/retry-budget.ts`: what the retry budget costs and what it saves, in one run.
//  1. Throughput at a healthy upstream: no filter vs retry-budget vs Envoy's native retry_budget (route retrying twice,
//     circuit_breakers.retry_budget 20% / min 3). Envoy --concurrency 1 pinned to core 0, the upstream a direct_response
//     listener of the same Envoy, wrk -t1 pinned to core 1, keep-alive, alternating rounds, medians (tests/bench/lib.ts).
//  2. Amplification at an upstream failing half its attempts under closed-loop load (wrk, 16 connections, Envoy
//     --concurrency 2, a Node upstream): upstream attempts per client request for the naive 2-retry policy, the
//     native retry_budget, and retry-budget.
// The machine is shared and small: the figures are indicative; compare them only within one run.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { startEnvoy, startUpstream, type Bootstrap, type Envoy } from "../harness/index.js";
import { bench, DEFAULT_BENCH, loopbackUpstream } from "./lib.js";

const FILTER = "envoy-configs/retry-budget.yaml";
const BASELINE = "envoy-configs/retry-budget-baseline.yaml";
const NATIVE = "envoy-configs/retry-budget-native.yaml";
/** Points the `service` cluster at a listener of the same Envoy that answers 200 itself. */
const answeringUpstream = (cfg: Bootstrap) => loopbackUpstream(cfg, ["service"]);

const healthy = await bench("Healthy upstream: throughput", [
  { name: "no filter (retry-budget-baseline.yaml, /)", envoy: { config: BASELINE, mutate: answeringUpstream } },
  { name: "retry-budget (retry-budget.yaml, /)", envoy: { config: FILTER, mutate: answeringUpstream } },
  { name: "native retry_budget (retry-budget-native.yaml, /)", envoy: { config: NATIVE, mutate: answeringUpstream } },
]);

interface Amplification {
  name: string;
  rps: number;
  attemptsPerRequest: number;
  success: number;
  overflow: number;
}

/** wrk against one variant with the upstream failing half the attempts; counts from Envoy's own stats. */
async function amplification(name: string, config: string, path: string, seconds: number): Promise<Amplification> {
  const upstream = await startUpstream({ failureRate: 0.5, seed: 7 });
  let envoy: Envoy | undefined;
  try {
    envoy = await startEnvoy({ config, clusters: { service: upstream }, concurrency: 2, mode: "process" });
    // Asynchronous: the upstream answers from this process's event loop while wrk runs.
    const r = await promisify(execFile)("taskset", ["-c", "1", "wrk", "-t1", "-c16", `-d${seconds}s`, `${envoy.url("ingress")}${path}`], { encoding: "utf8" });
    const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1]);
    const failed = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
    const stats = await envoy.stats("^cluster\\.service\\.upstream_rq_(total|retry_overflow)$");
    return {
      name,
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]),
      attemptsPerRequest: stats["cluster.service.upstream_rq_total"] / requests,
      success: 1 - failed / requests,
      overflow: stats["cluster.service.upstream_rq_retry_overflow"] ?? 0,
    };
  } finally {
    await envoy?.stop();
    await upstream.close();
  }
}

const seconds = DEFAULT_BENCH.seconds;
const failing = [
  await amplification("naive: route retries 5xx twice, no budget (baseline, /route-retries/)", BASELINE, "/route-retries/x", seconds),
  await amplification("native retry_budget 20% / min 3 concurrent (native, /)", NATIVE, "/x", seconds),
  await amplification("retry-budget ratio 0.2, min 10/s, 10 s window (filter, /)", FILTER, "/x", seconds),
];
console.log(`\nUpstream failing 50% of attempts: wrk -t1 -c16 -d${seconds}s closed loop, Envoy --concurrency 2, Node upstream`);
console.log("| variant | client req/s | upstream attempts per request | client success | retry overflows (native) |");
console.log("|---|---|---|---|---|");
for (const f of failing) {
  console.log(`| ${f.name} | ${f.rps.toFixed(0)} | ${f.attemptsPerRequest.toFixed(3)} | ${(f.success * 100).toFixed(1)}% | ${f.overflow} |`);
}
const [none, filter, native] = healthy;
console.log(`\nSummary: healthy throughput retry-budget/no-filter ${(filter.rps / none.rps).toFixed(2)}, ` +
  `retry-budget/native ${(filter.rps / native.rps).toFixed(2)}; attempts per request at 50% failure: naive ` +
  `${failing[0].attemptsPerRequest.toFixed(2)}, native ${failing[1].attemptsPerRequest.toFixed(2)}, retry-budget ${failing[2].attemptsPerRequest.toFixed(2)}`);
