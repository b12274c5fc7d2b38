// retry-budget's decision for access logs and spans (issue 12): filter state wasm.resilience_retries_granted =
// "<granted>/<wanted>" on a request the budget gave fewer retries than it wanted, nothing (no host call) on a full
// grant. In the emulator, on the standalone filter (the combined module runs the same stage; the deploy e2e reads its
// access log). Needs `node build/build.mjs retry-budget` first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { Host, prop, type Stream, type Vm } from "../emulator/index.js";

const KEY = "resilience_retries_granted";

const MODULES: Array<{ file: string; plugin: string; config: (budget: object) => string }> = [
  { file: "retry-budget.wasm", plugin: "retry-budget", config: (b) => JSON.stringify(b) },
  { file: "retry-budget.debug.wasm", plugin: "retry-budget", config: (b) => JSON.stringify(b) },
];

for (const m of MODULES) {
  const wasm = fileURLToPath(new URL(`../../build/${m.file}`, import.meta.url));

  describe(`${m.file}: the retry budget's denial as filter state`, () => {
    const start = (budget: object): Vm => {
      if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`node build/build.mjs retry-budget\` first`);
      const host = new Host({ vmId: "resilience" });
      return host.startVms(wasm, 1, { pluginConfig: m.config(budget), pluginName: m.plugin, rootId: m.plugin })[0]!;
    };
    /** One request to a.svc answered `code` after every attempt it was granted; returns its stream. */
    const send = (vm: Vm, headers: Record<string, string> = {}, code = 200): Stream => {
      const s = vm.newStream({ properties: { "xds.cluster_name": "a.svc" } });
      s.requestHeaders({ ":authority": "a.svc", ":path": "/", ":method": "GET", ...headers }, true);
      s.setProperty("upstream.request_attempt_count", prop.uint(Number(s.requestHeaders().get("x-envoy-max-retries")) + 1));
      s.responseHeaders({ ":status": String(code) }, true);
      s.finish();
      return s;
    };
    const published = (s: Stream) => {
      const v = s.filterState.get(KEY);
      return v === undefined ? undefined : new TextDecoder().decode(v);
    };

    test("a full grant publishes nothing and makes no property write", () => {
      const vm = start({ retryRatio: 0, minRetriesPerSecond: 2 });
      const s = send(vm);
      assert.equal(s.requestHeaders().get("x-envoy-max-retries"), "2");
      assert.equal(published(s), undefined);
      assert.equal(s.hostCallCount.proxy_set_property, undefined);
    });

    test("fewer retries than wanted: \"<granted>/<wanted>\" in one property write", () => {
      // 3 retries a second, 2 spent by the first request's failing attempts.
      const vm = start({ retryRatio: 0, minRetriesPerSecond: 3, maxRetries: 2 });
      assert.equal(published(send(vm, {}, 503)), undefined, "2 of 2");
      const partial = send(vm, {}, 503);
      assert.equal(partial.requestHeaders().get("x-envoy-max-retries"), "1");
      assert.equal(published(partial), "1/2");
      assert.equal(partial.hostCallCount.proxy_set_property, 1);
      const none = send(vm, {}, 503);
      assert.equal(none.requestHeaders().get("x-envoy-max-retries"), "0");
      assert.equal(published(none), "0/2");
    });

    test("a trusted client's wanted count is the one reported", () => {
      const vm = start({ retryRatio: 0, minRetriesPerSecond: 2, trustClientHeaders: true });
      assert.equal(published(send(vm, { "x-envoy-max-retries": "5" }, 503)), "2/5");
      assert.equal(published(send(vm, { "x-envoy-max-retries": "0" })), undefined, "nothing wanted, nothing denied");
    });
  });
}
