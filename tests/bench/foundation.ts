// `npm run bench`: what the binding and the service-metrics filter cost in Envoy, against the floor (an empty Wasm
// filter built on the same binding) and no filter at all, in one run; plus host calls per request and the emulator's
// cost per stream.
import { bench, directResponse, emptyWasm, withoutWasm } from "./lib.js";
import type { Bootstrap } from "../harness/index.js";

const CONFIG = "envoy-configs/service-metrics.yaml";

function emptyFilter(cfg: Bootstrap): void {
  directResponse(cfg);
  emptyWasm(cfg);
}

await bench("service-metrics: cost per request", [
  { name: "no filter", envoy: { config: CONFIG, mutate: (c) => { directResponse(c); withoutWasm(c); } } },
  { name: "empty Wasm filter (floor)", envoy: { config: CONFIG, mutate: emptyFilter } },
  { name: "service-metrics", envoy: { config: CONFIG, mutate: directResponse, wasm: { "service-metrics": "build/service-metrics.wasm" } }, wrkArgs: ["-H", "Host: service-a"] },
]);

// Host calls per request and the emulator's own cost per stream (the same release module, two emulated workers).
{
  const { Host } = await import("../emulator/index.js");
  const host = new Host();
  const vms = host.startVms("build/service-metrics.wasm", 2, { pluginConfig: "{}", pluginName: "service-metrics", rootId: "service-metrics" });
  const one = (i: number) => {
    const s = vms[i & 1]!.newStream({ properties: { "response.code": 200n, "request.duration": 1_000_000n } });
    s.requestHeaders({ ":authority": i & 2 ? "a.svc" : "b.svc", ":path": "/", ":method": "GET" }, true);
    s.responseHeaders({ ":status": "200" }, true);
    s.finish();
    return s;
  };
  for (let i = 0; i < 2_000; i++) one(i); // series defined, JIT warm
  const counted = one(1);
  const n = 20_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) one(i);
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  console.log(`\nservice-metrics host calls per request (steady state): ${JSON.stringify(counted.hostCallCount)}`);
  console.log(`emulator: ${us.toFixed(1)} us per stream (headers, response, log, delete) over ${n} streams`);
}
