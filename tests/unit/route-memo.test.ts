// The route memo of assembly/stream.ts in the combined module, two emulated workers sharing one shared-data namespace:
// traffic-split writes its routing header on every request (also on `{}`), so the breaker learns the cluster a
// re-routed request goes to from completed requests. What one worker learned must guard the other worker's first
// request too (a breaker opened on worker A refused nothing on worker B's first request before: a CI flake in
// tests/e2e/trust-outcomes.test.ts). Envoy names the re-selected cluster only at completion; the emulated requests do
// the same (xds.cluster_name changes between request headers and on_log).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { Host, type Vm } from "../emulator/index.js";

const WASM = fileURLToPath(new URL("../../build/resilience.wasm", import.meta.url));

function start(): { host: Host; a: Vm; b: Vm } {
  if (!existsSync(WASM)) throw new Error(`${WASM} is missing: run \`node build/build.mjs resilience\` first`);
  const host = new Host({ vmId: "resilience" });
  const [a, b] = host.startVms(WASM, 2, { rootId: "resilience", pluginName: "resilience", pluginConfig: "{}" });
  return { host, a, b };
}

/** One request: routed first to `first`, re-selected by Envoy to `final` (named only at completion); `status` upstream. */
function failOnce(host: Host, vm: Vm, first: string, final: string, status: bigint): void {
  const s = vm.newStream({ properties: { "xds.cluster_name": first } });
  s.requestHeaders({ ":authority": first, ":path": "/", ":method": "GET" }, true);
  assert.equal(s.localReply, undefined, "admitted");
  host.clock.advanceMs(20);
  s.setProperty("xds.cluster_name", final).setProperty("response.code", status).setProperty("upstream.request_attempt_count", 1n);
  s.finish();
}

function admitted(vm: Vm, first: string): boolean {
  const s = vm.newStream({ properties: { "xds.cluster_name": first } });
  s.requestHeaders({ ":authority": first, ":path": "/", ":method": "GET" }, true);
  const refused = s.localReply?.status === 503;
  s.finish();
  return !refused;
}

test("a breaker opened by worker A's requests refuses worker B's very first request to that destination", () => {
  const { host, a, b } = start();
  for (let i = 0; i < 5; i++) failOnce(host, a, "api", "api", 503n);
  assert.equal(admitted(a, "api"), false, "worker A refuses");
  assert.equal(admitted(b, "api"), false, "worker B refuses its first request too");
});

test("the pair learned on one worker names the re-selected cluster on the other: its breaker guards there", () => {
  const { host, a, b } = start();
  // The route table sends `api` with the subset header to `api-stable`: Envoy still names `api` on request headers.
  for (let i = 0; i < 5; i++) failOnce(host, a, "api", "api-stable", 503n);
  assert.equal(admitted(b, "api"), false, "worker B keys the request by api-stable, whose breaker is open");
  const other = start();
  failOnce(other.host, other.a, "api", "api-stable", 200n);
  assert.equal(admitted(other.b, "api"), true, "a closed breaker admits");
});
