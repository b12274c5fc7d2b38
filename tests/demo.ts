// `npm run demo`: the spike scenario end to end. A real Envoy runs the combined module (all five filters in one Wasm
// filter, envoy-configs/resilience.yaml) in front of three scripted services (inventory healthy, checkout 1% failing,
// payments down) while traffic jumps from 50 to 400 requests/s; then the same load hits the no-filter twin with a
// mesh's default retry policy. Prints what clients saw, what reached each service, and the filters' metrics.
import { closeHttp } from "./harness/index.js";
import { report, runSpike } from "./scenarios/spike.js";
import { formatConfig, formatTable, recommend } from "./scenarios/recommend-timeouts.js";

const filtered = await runSpike("resilience");
const baseline = await runSpike("baseline");
await closeHttp();

console.log("\nSpike: 50 -> 400 -> 50 requests/s, 12 s; inventory healthy, checkout 1% 503, payments down\n");
console.log(report([filtered, baseline]));
console.log(`\nretries made by the router under the budget: ${filtered.retriesMade}`);
console.log("\nMetrics of the filtered run (Envoy /stats/prometheus, the filters' series; histogram buckets left out):\n");
for (const s of filtered.series) {
  if (!/^resilience_/.test(s.name) || s.name.endsWith("_bucket")) continue;
  if (s.value === 0 && !/state|weight/.test(s.name)) continue;
  const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(",");
  console.log(`${s.name}{${labels}} ${s.value}`);
}

const recs = recommend(filtered.series);
if (recs.length > 0) {
  console.log("\nTimeouts from the latency measured under the spike (npm run recommend-timeouts; README \"Choosing timeouts\"):\n");
  console.log(formatTable(recs) + "\n\n" + formatConfig(recs));
}
