// The host-call probe (tests/fixtures/host-call-probe) makes exactly N of its one host call per request and nothing
// else on the request path, so tests/bench/host-calls.ts can divide a measured cost by N. Counted in the emulator over
// the request the benchmarks serve. Needs `npm run build` (or `node build/build.mjs`) first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { callsPerRequest } from "../bench/lib.js";

const N = 10;

function fixture(name: string): string {
  const wasm = fileURLToPath(new URL(`../../build/fixtures/${name}.wasm`, import.meta.url));
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`node build/build.mjs\` first`);
  return wasm;
}

/** Per request: the probe's host calls and VM entries for `spec`, on the proxied shape (xds.cluster_name set). */
function perRequest(spec: string, module = "host-call-probe") {
  return callsPerRequest(fixture(module), "host-call-probe", spec, { authority: "service-a", cluster: "service-a" }, 50, 20);
}

/** The entries every probe stream costs: creation, request headers, log, delete. */
const STREAM_ENTRIES = { proxy_on_context_create: 1, proxy_on_request_headers: 1, proxy_on_log: 1, proxy_on_delete: 1 };

// op -> the one host call it makes, and the malloc re-entries its N calls bring (a value the host copies in).
const OPS: Record<string, [call: string, mallocs: number]> = {
  clock: ["proxy_get_current_time_nanoseconds", 0],
  "hget-absent": ["proxy_get_header_map_value", 0],
  "hget-present": ["proxy_get_header_map_value", N],
  "hget-present-raw": ["proxy_get_header_map_value", N],
  pairs: ["proxy_get_header_map_pairs", N],
  hreplace: ["proxy_replace_header_map_value", 0],
  "hremove-absent": ["proxy_remove_header_map_value", 0],
  "prop-time": ["proxy_get_property", N],
  "prop-cluster": ["proxy_get_property", N],
  "prop-code": ["proxy_get_property", N],
  "prop-flags": ["proxy_get_property", N],
  "prop-duration": ["proxy_get_property", N],
  "prop-attempts": ["proxy_get_property", N],
  "metric-record": ["proxy_record_metric", 0],
  "metric-inc": ["proxy_increment_metric", 0],
  "metric-get": ["proxy_get_metric", 0],
  "shared-get": ["proxy_get_shared_data", N],
  "route-clear": ["proxy_call_foreign_function", 0],
};

describe("host-call probe: exactly N of its call per request (emulator)", () => {
  test("none: a stream context, no host call", async () => {
    const p = await perRequest("none*10");
    assert.deepEqual(p.calls, {});
    assert.deepEqual(p.entries, STREAM_ENTRIES);
  });

  for (const [op, [call, mallocs]] of Object.entries(OPS)) {
    test(`${op}*${N}: ${N} x ${call}${mallocs ? `, ${mallocs} malloc re-entries` : ""}, nothing else`, async () => {
      const p = await perRequest(`${op}*${N}`);
      assert.deepEqual(p.calls, { [call]: N });
      assert.deepEqual(p.entries, mallocs ? { ...STREAM_ENTRIES, malloc: mallocs } : STREAM_ENTRIES);
    });
  }

  test("N scales the calls: clock*3 reads the clock 3 times", async () => {
    assert.deepEqual((await perRequest("clock*3")).calls, { proxy_get_current_time_nanoseconds: 3 });
  });

  test("the response-headers variant adds one VM entry per request and no host call", async () => {
    const p = await perRequest("none*10", "host-call-probe-response");
    assert.deepEqual(p.calls, {});
    assert.deepEqual(p.entries, { ...STREAM_ENTRIES, proxy_on_response_headers: 1 });
  });

  // What tests/bench/host-calls.ts reads from Envoy's stats to know a variant did its work.
  for (const op of ["none", ...Object.keys(OPS)]) {
    test(`${op}*${N}: the probe counts ${op === "none" ? "no call" : `${N} calls that did their work`} per request, flushed on the tick`, async () => {
      const { Host } = await import("../emulator/index.js");
      const host = new Host({ vmId: "resilience" });
      const [vm] = host.startVms(fixture("host-call-probe"), 1, { pluginConfig: `${op}*${N}`, rootId: "host-call-probe", pluginName: "probe" });
      const requests = 7;
      for (let i = 0; i < requests; i++) {
        const s = vm!.newStream({ properties: { "xds.cluster_name": "service-a" } });
        s.requestHeaders({ ":authority": "service-a", ":path": "/", ":method": "GET", ":scheme": "http" }, true);
        s.responseHeaders({ ":status": "200", "content-length": "2" }, false);
        s.responseBody("ok", true);
        s.finish();
      }
      assert.ok(host.tick() > 0, "the probe's root has a tick");
      assert.equal(host.counter("host_call_probe_requests_total"), BigInt(requests));
      assert.equal(host.counter("host_call_probe_ok_total"), op === "none" ? 0n : BigInt(requests * N));
    });
  }

  test("a bad op spec is refused at configure", async () => {
    for (const spec of ["nothing*10", "clock*", "clock*x", "clock*1001"]) {
      await assert.rejects(perRequest(spec), /proxy_on_configure returned false/, spec);
    }
  });
});
