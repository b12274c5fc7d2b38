// recommend-timeouts on fixed scrape text: quantiles interpolated as Prometheus does, the p95 + max(25%, 10 ms) rule
// rounded up, the outbound reporter preferred, several scrapes added up, and the CLI's table and config fragment.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parsePrometheus } from "../harness/index.js";
import { formatConfig, formatTable, quantile, recommend, shareAbove, suggestTimeout } from "../scenarios/recommend-timeouts.js";

const bucketLines = (labels: string, buckets: [string, number][]) =>
  buckets.map(([le, n]) => `resilience_request_duration_bucket{${labels},le="${le}"} ${n}`).join("\n");

// inventory (outbound): 50 in (1,5], 40 in (5,10], 10 in (10,25]. Its inbound histogram differs and must be ignored.
// checkout (outbound): 96 in (10,25], 4 above 25 ms. payments: inbound only, 10/70/20/100 in (100,250]..(1000,2500].
const SCRAPE = [
  "# TYPE resilience_request_duration histogram",
  bucketLines('reporter="outbound",destination_service="inventory"', [["1", 0], ["5", 50], ["10", 90], ["25", 100], ["+Inf", 100]]),
  "resilience_request_duration_sum{reporter=\"outbound\",destination_service=\"inventory\"} 700",
  "resilience_request_duration_count{reporter=\"outbound\",destination_service=\"inventory\"} 100",
  bucketLines('reporter="inbound",destination_service="inventory"', [["1", 0], ["5", 0], ["10", 0], ["25", 0], ["+Inf", 7]]),
  bucketLines('reporter="outbound",destination_service="checkout"', [["10", 0], ["25", 96], ["+Inf", 100]]),
  bucketLines('reporter="inbound",destination_service="payments"', [["100", 0], ["250", 10], ["500", 80], ["1000", 100], ["2500", 200], ["+Inf", 200]]),
  bucketLines('reporter="outbound",destination_service="idle"', [["5", 0], ["+Inf", 0]]),
  "resilience_requests_total{reporter=\"outbound\",destination_service=\"inventory\",response_code=\"200\"} 100",
].join("\n");

const tmp = mkdtempSync(join(tmpdir(), "recommend-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("quantiles interpolate inside their bucket, from 0 in the first, the highest finite bound in +Inf", () => {
  const b = [{ le: 5, count: 50 }, { le: 10, count: 90 }, { le: 25, count: 100 }, { le: Infinity, count: 100 }];
  assert.equal(quantile(0.95, b), 17.5); // rank 95: 10 + 15 x 5/10
  assert.equal(quantile(0.5, b), 5);
  assert.equal(quantile(0.25, b), 2.5); // first bucket from 0
  assert.equal(quantile(0.99, [{ le: 25, count: 96 }, { le: Infinity, count: 100 }]), 25);
  assert.ok(Number.isNaN(quantile(0.95, [{ le: Infinity, count: 0 }])));
});

test("the timeout is p95 + max(25%, 10 ms), rounded up to 5 ms, 10 ms from 100 ms, 100 ms from 1 s", () => {
  assert.equal(suggestTimeout(0.4), 15);      // 10.4
  assert.equal(suggestTimeout(17.5), 30);     // 27.5
  assert.equal(suggestTimeout(40), 50);       // 40 + 10 (25% is 10 too)
  assert.equal(suggestTimeout(80), 100);      // 100 exactly
  assert.equal(suggestTimeout(200), 250);
  assert.equal(suggestTimeout(801), 1100);    // 1001.25: from 1 s up, 100 ms steps
  assert.equal(suggestTimeout(2350), 3000);   // 2937.5
});

test("per service from a fixed scrape: outbound preferred, empty histograms skipped", () => {
  const recs = recommend(parsePrometheus(SCRAPE));
  assert.deepEqual(recs.map((r) => [r.service, r.reporter, r.requests]), [
    ["checkout", "outbound", 100], ["inventory", "outbound", 100], ["payments", "inbound", 200],
  ]);
  const [checkout, inventory, payments] = recs;
  assert.equal(inventory.p95ms, 17.5);
  assert.equal(inventory.p99ms, 23.5);
  assert.equal(inventory.timeoutMs, 30);
  assert.equal(inventory.aboveTimeout, 0);
  assert.equal(checkout.p95ms, 10 + 15 * (95 / 96));
  assert.equal(checkout.p99ms, 25);
  assert.equal(checkout.timeoutMs, 35);
  assert.equal(checkout.aboveTimeout, 0.04, "the 4 requests above 25 ms may all be slower than 35 ms");
  assert.equal(payments.p95ms, 2350);
  assert.equal(payments.p99ms, 2470);
  assert.equal(payments.timeoutMs, 3000);
});

test("several scrapes (one per Envoy) are added up bucket by bucket", () => {
  const other = bucketLines('reporter="outbound",destination_service="inventory"', [["1", 0], ["5", 0], ["10", 0], ["25", 100], ["+Inf", 100]]);
  const inventory = recommend([...parsePrometheus(SCRAPE), ...parsePrometheus(other)]).find((r) => r.service === "inventory")!;
  assert.equal(inventory.requests, 200);
  // 50, 90, 200 cumulative: rank 190 in (10,25]: 10 + 15 x 100/110.
  assert.equal(inventory.p95ms, 10 + 15 * (100 / 110));
});

test("share above the timeout counts every request not in a bucket bounded at or below it", () => {
  const b = [{ le: 10, count: 50 }, { le: 25, count: 96 }, { le: Infinity, count: 100 }];
  assert.equal(shareAbove(25, b), 0.04);
  assert.equal(shareAbove(24, b), 0.5);
  assert.equal(shareAbove(5, b), 1);
});

test("the table and the config fragment carry each service's figures", () => {
  const recs = recommend(parsePrometheus(SCRAPE));
  const table = formatTable(recs);
  assert.match(table, /^\| inventory \| outbound \| 100 \| 17\.5 \| 23\.5 \| 30 \| 0\.0% \|$/m);
  assert.match(table, /^\| payments \| inbound \| 200 \| 2350 \| 2470 \| 3000 \| 0\.0% \|$/m);
  const config = formatConfig(recs);
  const defaults = JSON.parse(/"defaults": (\[[\s\S]*?\n\])/.exec(config)![1]);
  assert.deepEqual(defaults, [{ destination: "checkout", ms: 35 }, { destination: "inventory", ms: 30 }, { destination: "payments", ms: 3000 }]);
  assert.match(config, /^route: \{ cluster: inventory, timeout: 0\.03s \}$/m);
  assert.match(config, /^route: \{ cluster: payments, timeout: 3s \}$/m);
});

test("the CLI reads a saved scrape file and prints both; without a histogram it fails", () => {
  const file = join(tmp, "scrape.txt");
  writeFileSync(file, SCRAPE);
  const run = (arg: string) => spawnSync(process.execPath, ["--import", "tsx", "tests/scenarios/recommend-timeouts.ts", arg], { encoding: "utf8" });
  const ok = run(file);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /\| checkout \| outbound \| 100 \|/);
  assert.match(ok.stdout, /"defaults": \[/);
  const empty = join(tmp, "empty.txt");
  writeFileSync(empty, "resilience_requests_total{destination_service=\"x\"} 1\n");
  const bad = run(empty);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /no resilience_request_duration histogram/);
});
