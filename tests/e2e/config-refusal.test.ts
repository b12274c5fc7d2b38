// A handful of tests/unit/config-corpus.test.ts's refused configurations, each handed to a real Envoy in the module's
// shipped bootstrap: Envoy refuses to start, and its log carries the module's one critical line naming the field (and,
// for a syntax error, the position). Also: a 1 MiB configuration of escapes is refused at once, naming its size.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { closeHttp, envoyModes, startEnvoyExpectFailure, type Bootstrap } from "../harness/index.js";

after(closeHttp);

const modes = await envoyModes();

/** Sets the configuration of every Wasm filter of `rootId` in the bootstrap. */
function setPluginConfig(node: unknown, rootId: string, value: string): number {
  let found = 0;
  if (Array.isArray(node)) for (const n of node) found += setPluginConfig(n, rootId, value);
  else if (node && typeof node === "object") {
    const o = node as Bootstrap;
    if (o.root_id === rootId && o.vm_config && o.configuration) {
      o.configuration.value = value;
      found++;
    }
    for (const v of Object.values(o)) found += setPluginConfig(v, rootId, value);
  }
  return found;
}

/** Escapes a literal for a RegExp. */
const literal = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/gu, "\\$&"), "u");

const CASES: Array<{ module: string; title: string; config: string; line: string }> = [
  { module: "retry-budget", title: "a sync longer than the window", config: '{"windowSeconds": 1, "syncIntervalMs": 500}',
    line: 'retry-budget: field "syncIntervalMs": expected at most a quarter of "windowSeconds" (250 ms), got 500' },
  { module: "retry-budget", title: "a syntax error on the third line", config: '{\n  "retryRatio": 0.2,\n  "retryOn": "5xx" "maxRetries": 2\n}',
    line: `retry-budget: syntax error at line 3 column 20 (byte 42) in "retryOn": expected ',' or '}', got '"'` },
  { module: "outlier-breaker", title: "a maximum open time below the base", config: '{"baseOpenMs": 10000, "maxOpenMs": 5000}',
    line: 'outlier-breaker: field "maxOpenMs"' },
  { module: "deadline", title: "a floor above the ceiling", config: '{"minMs": 2000, "maxMs": 1000}', line: 'deadline: field "minMs"' },
  { module: "deadline", title: "a duplicate key", config: '{"maxMs": 1000, "maxMs": 2000}',
    line: 'deadline: syntax error at line 1 column 17 (byte 16) in "maxMs": duplicate key "maxMs"' },
  { module: "traffic-split", title: "a sync at the rollback window", config: '{"syncIntervalMs": 5000, "rollback": {"windowMs": 5000}}',
    line: 'traffic-split: field "syncIntervalMs": expected at most a quarter of "rollback.windowMs" (5000 / 4 = 1250), got 5000' },
  { module: "service-metrics", title: "an Istio label without Istio naming", config: '{"sourceWorkload": "gateway"}',
    line: 'service-metrics: field "sourceWorkload": is an Istio label, used only with "naming" "istio"' },
  { module: "resilience", title: "a misspelled key in a section", config: '{"traffic-split": {"rollback": {"windowMS": 5000}}}',
    line: 'resilience: unknown field "traffic-split.rollback.windowMS" (did you mean "windowMs"?)' },
  { module: "resilience", title: "a trailing comma in a section's list", config: '{"outlier-breaker": {"failOn": ["5xx",]}}',
    line: `resilience: syntax error at line 1 column 39 (byte 38) in "outlier-breaker.failOn[1]": trailing ',' before ']'` },
  { module: "resilience", title: "1 MiB of escapes", config: `{"x": "${"\\n".repeat((1048576 - 9) / 2)}"}`,
    line: "resilience: configuration is 1048575 bytes, more than the cap of 262144 bytes (256 KiB)" },
];

for (const mode of modes) {
  describe(`configurations refused by a real Envoy in ${mode} mode`, () => {
    for (const c of CASES) {
      test(`${c.module}: ${c.title} makes Envoy refuse to start, with the module's critical line`, async () => {
        const started = performance.now();
        const r = await startEnvoyExpectFailure({
          config: `envoy-configs/${c.module}.yaml`, wasm: { [c.module]: `build/${c.module}.wasm` }, concurrency: 1, mode,
          mutate: (cfg) => assert.ok(setPluginConfig(cfg, c.module, c.config) > 0, `no ${c.module} filter in the bootstrap`),
        });
        const ms = performance.now() - started;
        assert.notEqual(r.exitCode, 0);
        assert.match(r.log, literal(c.line));
        assert.match(r.log, /Unable to create Wasm plugin/u);
        // The quadratic decoder took over 10 s on 1 MiB of escapes; the cap refuses it before parsing.
        if (c.title.startsWith("1 MiB")) assert.ok(ms < 10_000, `refused after ${ms.toFixed(0)} ms`);
      });
    }
  });
}
