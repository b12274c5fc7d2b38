// `npm run demo`: a real Envoy running the service-metrics filter in front of two scripted services; sends a mix of
// traffic and prints the Prometheus series the filter produced.
import { closeHttp, request, startEnvoy, startUpstream, type UpstreamAction } from "./harness/index.js";

const mix = (req: { path: string }, i: number): UpstreamAction => {
  if (i % 10 === 9) return { status: 503 };
  if (i % 25 === 24) return { reset: true };
  if (req.path === "/slow") return { status: 200, latencyMs: 120 };
  return { status: 200 };
};

const a = await startUpstream({ name: "service-a", respond: mix });
const b = await startUpstream({ name: "service-b", respond: mix });
const envoy = await startEnvoy({
  config: "envoy-configs/service-metrics.yaml",
  wasm: { "service-metrics": "build/service-metrics.wasm" },
  clusters: { "service-a": a, "service-b": b },
  concurrency: 2,
});
try {
  console.log(`Envoy ${envoy.mode} mode: listener ${envoy.url()}, admin ${envoy.adminUrl}`);
  const statuses: Record<number, number> = {};
  for (let i = 0; i < 200; i++) {
    const host = i % 3 === 0 ? "service-b" : "service-a";
    const r = await request(envoy.url() + (i % 20 === 0 ? "/slow" : "/"), { headers: { host } });
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  }
  console.log("client saw:", statuses);
  await new Promise((r) => setTimeout(r, 5_500)); // histograms are published at Envoy's stats flush
  const text = await envoy.prometheus();
  console.log(text.split("\n").filter((l) => /^resilience_/.test(l) && !/_bucket\{.*le="(0\.5|1|5|25|50|250|1000|2500|5000|10000|30000|60000|300000|600000|1800000)"/.test(l)).join("\n"));
} finally {
  await envoy.stop();
  await a.close();
  await b.close();
  await closeHttp();
}
