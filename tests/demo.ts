// `npm run demo`: the user's spike test on a small mesh (tests/scenarios/mesh.ts). A gateway and five services each
// behind a sidecar, real Envoys on 127.0.0.1, take an open-loop spike three times: naive mesh defaults, Envoy's native
// best practice, and this bundle. Prints one table per run, the verdict on the user's three criteria, the path of the
// HTML report (charts), and the timeouts recommended from the bundle run's measured latency.
// DEMO_SHORT=1 runs the suite's shortened schedule; DEMO_SCREENSHOT=<png> also saves the bundle run's charts.
import { mkdirSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { resolve } from "node:path";
import { closeHttp, projectRoot } from "./harness/index.js";
import { inspectReport } from "./scenarios/mesh-browser.js";
import { DEFAULT_TIMING, SHORT_TIMING, describeScenario, runAllPolicies } from "./scenarios/mesh.js";
import { formatSummary, summarize, writeReport } from "./scenarios/mesh-report.js";
import { formatConfig, formatTable, recommend } from "./scenarios/recommend-timeouts.js";

const timing = process.env.DEMO_SHORT ? SHORT_TIMING : DEFAULT_TIMING;
const scenario = describeScenario(timing);
console.log(`${scenario}\n`);
// Latency is measured on this machine: the load before the runs (others' work, not ours) is said when it is high.
const [loadBefore] = loadavg();
const tty = process.stderr.isTTY;
const t0 = Date.now();
const runs = await runAllPolicies({
  timing,
  // On a terminal one line rewritten in place; otherwise a line every few seconds.
  progress: (line) => (tty ? process.stderr.write(`\r${line}\x1b[K`) : Number(line.match(/ (\d+) \//)?.[1]) % 5 === 0 && console.error(line)),
});
if (tty) process.stderr.write("\r\x1b[K");
await closeHttp();

if (loadBefore > availableParallelism()) console.log(`Note: load average ${loadBefore.toFixed(1)} on ${availableParallelism()} cores before the runs: latency figures include waiting for a core.\n`);

const summaries = runs.map(summarize);
for (const s of summaries) console.log(`${formatSummary(s)}\n`);

const dir = resolve(projectRoot, "build/out");
mkdirSync(dir, { recursive: true });
const report = resolve(dir, "mesh-report.html");
writeReport(report, runs, summaries, scenario);
console.log(`Report (charts per run, offline): ${report}`);
// DEMO_SCREENSHOT=docs/report.png: the bundle run's section as headless Chromium renders it (the README's picture).
if (process.env.DEMO_SCREENSHOT) {
  const shot = resolve(process.env.DEMO_SCREENSHOT);
  const r = await inspectReport(report, { screenshot: shot, screenshotOf: "#bundle" });
  console.log(`Screenshot: ${shot} (${r.painted} of ${r.canvases} charts painted, ${r.errors.length} console errors)`);
}
console.log(`Three runs in ${((Date.now() - t0) / 1000).toFixed(0)} s.`);

const recs = recommend(runs.find((r) => r.policy === "bundle")!.final);
if (recs.length > 0) {
  console.log("\nTimeouts from the latency the bundle's gateway measured under the spike (npm run recommend-timeouts; README \"Choosing timeouts\"):\n");
  console.log(formatTable(recs) + "\n\n" + formatConfig(recs));
}
