// The dashboard and alert rules in envoy-configs/observability against a REAL Prometheus scraping a REAL Envoy
// (the combined module, envoy-configs/resilience.yaml) under traffic: every dashboard query, with its template
// variables substituted, and every alert's measure returns the series the panel or alert is drawn from.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { closeHttp, parsePrometheus, request, startEnvoy, startUpstream, waitFor, notYet, type Envoy, type Upstream } from "../harness/index.js";
import { startPrometheus, type Prometheus, type PromSample } from "./prometheus-helpers.js";
import { readScrape, recommend } from "../scenarios/recommend-timeouts.js";

const DIR = "envoy-configs/observability";
const SERVICES = ["checkout-canary", "checkout-stable", "inventory", "payments"];
const SUBSETS = ["canary", "stable"];
// Grafana's variables as Grafana would expand them: "All" services, a rate window of several 1 s scrapes.
const VARIABLES: Record<string, string> = { $service: ".*", $__rate_interval: "15s", $__range: "5m" };
const expand = (expr: string, vars = VARIABLES) => Object.entries(vars).reduce((e, [k, v]) => e.split(k).join(v), expr);

interface Target { expr: string; legendFormat: string }
interface Panel { title: string; targets: Target[] }
const dashboard = JSON.parse(readFileSync(`${DIR}/dashboard.json`, "utf8")) as { panels: Panel[]; templating: { list: any[] } };
const alerts = (parse(readFileSync(`${DIR}/alerts.yaml`, "utf8")) as { groups: { rules: { alert: string; expr: string }[] }[] })
  .groups.flatMap((g) => g.rules);

/** The labels a legend names ({{label}}): each series a panel draws must carry them. */
const legendLabels = (legend: string) => [...legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]);
/** The labels an aggregation keeps: `by (a, b)` of the outermost aggregation. */
const byLabels = (expr: string) => (expr.match(/\bby \(([^)]*)\)/)?.[1] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
/** An alert's measure: its expression without the final comparison against the threshold. */
const measure = (expr: string) => expr.replace(/\s*(==|!=|>=|<=|>|<)\s*[0-9.]+\s*$/, "");
const values = (rows: PromSample[], label: string) => [...new Set(rows.map((r) => r.metric[label]))].sort();
const valueOf = (rows: PromSample[], labels: Record<string, string>) =>
  rows.find((r) => Object.entries(labels).every(([k, v]) => r.metric[k] === v))?.value[1];

after(closeHttp);

describe("dashboard and alerts against a real Prometheus scraping a real Envoy (process mode)", () => {
  let stable: Upstream, canary: Upstream, inventory: Upstream, payments: Upstream;
  let envoy: Envoy;
  let prom: Prometheus;
  let traffic: Promise<void> | undefined;
  let stopping = false;

  /** Waits until `expr` returns rows that `ok` accepts (Prometheus fills as it scrapes); resolves with them. */
  const queryUntil = (what: string, expr: string, ok: (rows: PromSample[]) => boolean) =>
    waitFor(`${what}: ${expr}`, async () => {
      const rows = await prom.query(expr);
      return ok(rows) ? rows : notYet(rows.map((r) => ({ ...r.metric, value: r.value[1] })));
    }, { timeoutMs: 30_000, intervalMs: 500 });

  before(async () => {
    stable = await startUpstream({ name: "checkout-stable", latencyMs: 3 });
    // The canary fails every request for /fail, each attempt: retries cannot hide it, so its failure share is the
    // share of /fail requests whatever the load (a per-attempt failure rate would depend on the retry budget).
    canary = await startUpstream({ name: "checkout-canary", latencyMs: 3, respond: (req) => ({ status: req.path === "/fail" ? 503 : 200 }) });
    inventory = await startUpstream({ name: "inventory", latencyMs: 2 });
    payments = await startUpstream({ name: "payments", status: 503 });
    envoy = await startEnvoy({
      config: "envoy-configs/resilience.yaml", wasm: { resilience: "build/resilience.wasm" }, concurrency: 2, mode: "process",
      clusters: { "checkout-stable": stable, "checkout-canary": canary, inventory, payments },
      // Histograms are published at each stats flush: every second instead of every 5 s, so the test is short.
      mutate: (cfg) => { (cfg as any).stats_flush_interval = "1s"; },
    });
    prom = await startPrometheus({ targets: [new URL(envoy.adminUrl).host], ruleFiles: [resolve(`${DIR}/alerts.yaml`)] });
    // Steady traffic for the whole test: healthy inventory, failing payments, checkout split between stable and canary,
    // and one request in three forced to the canary's failing path (above its 10% rollback rate, under the breaker's
    // 50%, never 5 failures in a row).
    let n = 0;
    traffic = (async () => {
      while (!stopping) {
        n++;
        await Promise.all([
          request(envoy.url() + "/", { headers: { host: "inventory" } }),
          request(envoy.url() + "/", { headers: { host: "payments" } }),
          request(envoy.url() + "/", { headers: { host: "checkout", "x-user-id": `user-${n % 50}` } }),
          request(envoy.url() + (n % 3 === 0 ? "/fail" : "/"), { headers: { host: "checkout", "x-canary": "always" } }),
        ]);
        await new Promise((r) => setTimeout(r, 20)); // pacing (about 150 req/s), not a wait on a condition
      }
    })();
    // Enough scrapes for a rate: every service's duration histogram has counted requests and been scraped 3 times
    // (the canary may stop receiving traffic early: its failures roll it back).
    await queryUntil("three scrapes of every service's counted histogram",
      `count_over_time(resilience_request_duration_count[15s]) >= 3 and resilience_request_duration_count > 0`,
      (rows) => values(rows, "destination_service").join() === SERVICES.join());
  });
  after(async () => {
    stopping = true;
    await traffic?.catch(() => undefined);
    await prom?.stop();
    await envoy?.stop();
    for (const u of [stable, canary, inventory, payments]) await u?.close();
  });

  test("the service variable lists every destination", async () => {
    const variable = dashboard.templating.list.find((v) => v.name === "service");
    const m = /^label_values\((\w+), (\w+)\)$/.exec(variable.query.query);
    assert.ok(m, `service variable query: ${variable.query.query}`);
    const names = await prom.api<string[]>(`label/${m[2]}/values?match[]=${encodeURIComponent(m[1])}`);
    assert.deepEqual(names.filter((s) => s !== "other").sort(), SERVICES);
  });

  test("every dashboard query returns series carrying its legend's labels", async () => {
    const queries = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, ...t })));
    assert.ok(queries.length >= 18, `${queries.length} queries`);
    for (const q of queries) {
      const expr = expand(q.expr);
      assert.doesNotMatch(expr, /\$/, `${q.panel}: a variable left unexpanded`);
      const labels = legendLabels(q.legendFormat);
      const rows = await queryUntil(q.panel, expr, (rows) => rows.length > 0 && rows.every((r) => labels.every((l) => r.metric[l] !== undefined)));
      // Per-service and per-subset panels draw a line for every one.
      if (labels.includes("destination_service")) assert.deepEqual(values(rows, "destination_service"), SERVICES, `${q.panel}: ${q.expr}`);
      if (labels.includes("subset")) assert.deepEqual(values(rows, "subset"), SUBSETS, `${q.panel}: ${q.expr}`);
      if (labels.includes("envoy_cluster_name")) {
        for (const s of SERVICES) assert.ok(values(rows, "envoy_cluster_name").includes(s), `${q.panel}: cluster ${s} in ${q.expr}`);
      }
    }
  });

  test("the panels show what the traffic did", async () => {
    const panel = (title: string, i = 0) => expand(dashboard.panels.find((p) => p.title === title)!.targets[i].expr);
    // Payments answers only 503 (its breaker's answers too), inventory never fails.
    await queryUntil("error rate", panel("Error rate per service"),
      (rows) => valueOf(rows, { destination_service: "payments" }) === "1" && valueOf(rows, { destination_service: "inventory" }) === "0");
    await queryUntil("breaker state", panel("Breaker state per destination"),
      (rows) => Number(valueOf(rows, { destination_service: "payments" })) >= 1 && valueOf(rows, { destination_service: "inventory" }) === "0");
    // Inventory answers in about 2 ms: its p99 is a finite number of milliseconds inside its 1 s SLA.
    const p99 = await queryUntil("inventory p99", panel("Latency p50 / p95 / p99 by service", 2),
      (rows) => Number.isFinite(Number(valueOf(rows, { destination_service: "inventory" }))));
    const ms = Number(valueOf(p99, { destination_service: "inventory" }));
    assert.ok(ms > 0 && ms < 1000, `inventory p99 ${ms} ms`);
    // A third of the canary's requests fail, its rollback threshold is 10%: traffic-split takes its weight away.
    await queryUntil("canary rolled back", panel("Canary weight", 1),
      (rows) => valueOf(rows, { subset: "canary" }) === "1" && valueOf(rows, { subset: "stable" }) === "0");
    const weights = await prom.query(panel("Canary weight", 0));
    assert.equal(valueOf(weights, { subset: "canary" }), "0", "a rolled-back canary has no weight");
    const memory = await prom.query(panel("Filter cost: Wasm memory"));
    assert.ok(Number(valueOf(memory, { filter: "resilience" })) > 0, "the module's memory in bytes");
    // The template narrows: two services chosen, two lines.
    const narrowed = await prom.query(expand(dashboard.panels[0].targets[0].expr, { ...VARIABLES, $service: "inventory|payments" }));
    assert.deepEqual(values(narrowed, "destination_service"), ["inventory", "payments"]);
  });

  test("every alert's measure returns series with the labels the alert is raised for", async () => {
    assert.equal(alerts.length, 4);
    for (const a of alerts) {
      const raw = measure(a.expr);
      assert.notEqual(raw, a.expr, `${a.alert}: the threshold comparison was found and removed`);
      const labels = byLabels(raw);
      assert.ok(labels.length > 0, `${a.alert} aggregates by the label it is raised for`);
      const rows = await queryUntil(a.alert, raw, (rows) => rows.length > 0 && rows.every((r) => labels.every((l) => r.metric[l] !== undefined)));
      for (const row of rows) assert.deepEqual(Object.keys(row.metric).sort(), [...labels].sort(), `${a.alert}: only the aggregation's labels`);
    }
  });

  test("Prometheus evaluates the rules: canary rollback firing, payments' breaker and error rate pending, none for inventory", async () => {
    const rules = await prom.api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>("rules");
    const loaded = rules.groups.flatMap((g) => g.rules);
    assert.deepEqual(loaded.map((r) => r.name).sort(), alerts.map((a) => a.alert).sort());
    for (const r of loaded) assert.equal(r.health, "ok", `${r.name}: ${r.lastError}`);
    type Alert = { labels: Record<string, string>; state: string };
    const active = await waitFor("payments' breaker and error rate alerts", async () => {
      const list = (await prom.api<{ alerts: Alert[] }>("alerts")).alerts;
      const has = (name: string) => list.some((a) => a.labels.alertname === name && a.labels.destination_service === "payments");
      const rolledBack = list.some((a) => a.labels.alertname === "ResilienceCanaryRolledBack" && a.labels.subset === "canary" && a.state === "firing");
      return rolledBack && has("ResilienceBreakerOpenTooLong") && has("ResilienceErrorRateAboveSLO") ? list : notYet(list);
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(active.every((a) => a.labels.destination_service !== "inventory" && a.labels.subset !== "stable"), "no alert for the healthy ones");
    assert.ok(active.every((a) => a.state === "pending" || a.labels.alertname === "ResilienceCanaryRolledBack"),
      "the breaker and SLO alerts wait out their `for` before firing");
  });

  test("recommend-timeouts reads the live admin endpoint and agrees with Prometheus' histogram_quantile", async () => {
    const recs = recommend(parsePrometheus(await readScrape(envoy.adminUrl)));
    assert.deepEqual(recs.map((r) => r.service), SERVICES);
    const inventory = recs.find((r) => r.service === "inventory")!;
    assert.equal(inventory.reporter, "outbound");
    assert.ok(inventory.timeoutMs >= inventory.p95ms + 10, `timeout ${inventory.timeoutMs} ms above p95 ${inventory.p95ms} ms`);
    // The same interpolation over the whole run: Prometheus on its latest scrape (at most one flush behind) lands in
    // the same bucket, so the two differ by less than that bucket's width.
    const [row] = await prom.query(`histogram_quantile(0.95, sum by (le) (resilience_request_duration_bucket{reporter="outbound",destination_service="inventory"}))`);
    const fromProm = Number(row.value[1]);
    const bounds = [0, 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000];
    const bucket = (ms: number) => bounds.findIndex((b) => ms <= b);
    assert.equal(bucket(inventory.p95ms), bucket(fromProm), `recommend ${inventory.p95ms} ms, Prometheus ${fromProm} ms`);
  });
});
