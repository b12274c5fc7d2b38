// The alert rules and scrape config in envoy-configs/observability pass promtool, and promtool's verdict is read for
// real: a copy with a broken expression, and a copy whose unit test expects the wrong alert, both fail.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parse } from "yaml";

const DIR = "envoy-configs/observability";
const promtool = (...args: string[]) => spawnSync("promtool", args, { encoding: "utf8" });
const tmp = mkdtempSync(join(tmpdir(), "alerts-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the rules and their tests in a temp folder, with `edit` applied to one of them. */
function brokenCopy(file: "alerts.yaml" | "alerts.test.yaml", edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmp, "copy-"));
  for (const f of ["alerts.yaml", "alerts.test.yaml"]) copyFileSync(join(DIR, f), join(dir, f));
  const text = readFileSync(join(dir, file), "utf8");
  const changed = edit(text);
  assert.notEqual(changed, text, "the edit changed the file");
  writeFileSync(join(dir, file), changed);
  return dir;
}

describe("alert rules (promtool)", () => {
  test("promtool is installed (npm run setup: build/system-deps.sh)", () => {
    assert.equal(promtool("--version").status, 0, "promtool not found on PATH");
  });

  test("promtool check rules finds the four alerts", () => {
    const r = promtool("check", "rules", join(DIR, "alerts.yaml"));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 4 rules found/);
  });

  test("promtool test rules: each alert fires and stays silent where it should", () => {
    const r = promtool("test", "rules", join(DIR, "alerts.test.yaml"));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
  });

  test("every alert has a firing case in the unit tests", () => {
    const rules = [...readFileSync(join(DIR, "alerts.yaml"), "utf8").matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const tests = readFileSync(join(DIR, "alerts.test.yaml"), "utf8");
    assert.equal(rules.length, 4);
    for (const name of rules) {
      // A firing case: the alert's name followed by a non-empty exp_alerts list.
      assert.match(tests, new RegExp(`alertname: ${name}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${name} has a case where it fires`);
      assert.match(tests, new RegExp(`alertname: ${name}\\n\\s+exp_alerts: \\[\\]`), `${name} has a case where it does not fire`);
    }
  });

  test("promtool check config accepts the scrape config and its rule file", () => {
    const r = promtool("check", "config", join(DIR, "prometheus.yaml"));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 1 rule files found/);
  });

  test("the scrape config reads /stats/prometheus on the shipped configs' admin ports, on 127.0.0.1 only", () => {
    const config = parse(readFileSync(join(DIR, "prometheus.yaml"), "utf8"));
    const targets: string[] = [];
    for (const job of config.scrape_configs) {
      assert.equal(job.metrics_path, "/stats/prometheus", job.job_name);
      for (const sc of job.static_configs) targets.push(...sc.targets);
    }
    for (const t of targets) assert.match(t, /^127\.0\.0\.1:\d+$/);
    const adminPort = (file: string) => parse(readFileSync(`envoy-configs/${file}`, "utf8")).admin.address.socket_address.port_value;
    for (const file of ["sidecar.yaml", "gateway.yaml", "resilience.yaml"]) {
      assert.ok(targets.includes(`127.0.0.1:${adminPort(file)}`), `${file}'s admin port is scraped`);
    }
  });

  test("the dashboard: unique panel ids, unique refIds per panel, no two panels on the same grid cells", () => {
    const d = JSON.parse(readFileSync(join(DIR, "dashboard.json"), "utf8"));
    const ids = d.panels.map((p: any) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    const cells = new Map<string, string>();
    for (const p of d.panels) {
      assert.ok(p.title && p.targets.length > 0, `panel ${p.id} has a title and queries`);
      const refs = p.targets.map((t: any) => t.refId);
      assert.equal(new Set(refs).size, refs.length, `${p.title}: refIds`);
      for (const t of p.targets) assert.equal(t.datasource.uid, "${datasource}", `${p.title}: uses the datasource variable`);
      const { x, y, w, h } = p.gridPos;
      assert.ok(x >= 0 && x + w <= 24, `${p.title}: inside the 24-column grid`);
      for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
        assert.equal(cells.get(`${i},${j}`), undefined, `${p.title} overlaps ${cells.get(`${i},${j}`)}`);
        cells.set(`${i},${j}`, p.title);
      }
    }
    assert.deepEqual(d.templating.list.map((v: any) => v.name), ["datasource", "service"]);
  });

  test("a broken expression fails promtool check rules and test rules", () => {
    const dir = brokenCopy("alerts.yaml", (t) => t.replace("max by (destination_service) (resilience_outlier_breaker_state) >= 1",
      "max by (destination_service) (resilience_outlier_breaker_state == 1"));
    const check = promtool("check", "rules", join(dir, "alerts.yaml"));
    assert.notEqual(check.status, 0, "check rules accepted an unbalanced parenthesis");
    assert.match(check.stdout + check.stderr, /FAILED|parse error/);
    assert.notEqual(promtool("test", "rules", join(dir, "alerts.test.yaml")).status, 0);
  });

  test("a rule that no longer fires fails its unit test", () => {
    // The SLO raised to 50%: flaky's 10% error rate no longer fires, which alerts.test.yaml expects.
    const dir = brokenCopy("alerts.yaml", (t) => t.replace(/\n {10}> 0\.01\n/, "\n          > 0.5\n"));
    assert.equal(promtool("check", "rules", join(dir, "alerts.yaml")).status, 0, "still a valid rule file");
    const r = promtool("test", "rules", join(dir, "alerts.test.yaml"));
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /ResilienceErrorRateAboveSLO/);
  });
});
