// `node --import tsx tests/bench/deadline.ts`: what the deadline filter costs per request, in one run: the sidecar's
// listeners with no filter (deadline-baseline.yaml), with the filter propagating a header budget only, as shipped on the
// inbound side (record + release in the shared table) and on the outbound side (table lookup). Every route answers with
// direct_response, so only Envoy and the filter are measured (tests/bench/lib.ts: Envoy --concurrency 1 on core 0, wrk
// on core 1, alternating rounds, medians). Envoy has no native equivalent for an HTTP budget header (its own deadline
// handling is the route timeout and, for gRPC, max_stream_duration.grpc_timeout_header_max), so the control is the
// no-filter twin. The machine is shared and small: the figures are indicative; compare them only within one run.
import type { Bootstrap } from "../harness/index.js";
import { bench, directResponse, hcm } from "./lib.js";

const SIDECAR = "envoy-configs/deadline.yaml";
const BASELINE = "envoy-configs/deadline-baseline.yaml";
const WASM = { deadline: "build/deadline.wasm" };
const BUDGET = ["-H", "x-resilience-deadline-ms: 5000"];

/** Puts the listener named `name` first (the one lib.ts measures) and makes it answer by itself. */
function only(name: string, plugin?: object) {
  return (cfg: Bootstrap) => {
    const listeners = cfg.static_resources.listeners;
    cfg.static_resources.listeners = [listeners.find((l: Bootstrap) => l.name === name)];
    directResponse(cfg);
    if (plugin) hcm(cfg).http_filters[0].typed_config.config.configuration.value = JSON.stringify(plugin);
  };
}

await bench("deadline: cost per request (header budget of 5 s on every request)", [
  { name: "no filter (deadline-baseline.yaml, inbound)", envoy: { config: BASELINE, mutate: only("inbound") }, wrkArgs: BUDGET },
  {
    name: "deadline, propagate only (crossHop off)",
    envoy: { config: SIDECAR, wasm: WASM, mutate: only("inbound", { incoming: "trust", marginMs: 5 }) },
    wrkArgs: BUDGET,
  },
  { name: "deadline inbound as shipped (record + release)", envoy: { config: SIDECAR, wasm: WASM, mutate: only("inbound") }, wrkArgs: BUDGET },
  { name: "deadline outbound as shipped (lookup, a miss)", envoy: { config: SIDECAR, wasm: WASM, mutate: only("outbound") }, wrkArgs: BUDGET },
]);

// Host calls per request in the same release module (emulator), steady state.
{
  const { Host } = await import("../emulator/index.js");
  const host = new Host({ vmId: "resilience" });
  const config = (mode: string) =>
    JSON.stringify({ incoming: "trust", marginMs: 5, defaultMs: 1000, crossHop: { mode, slots: 4096, graceMs: 5000 } });
  const [vm] = host.startVms(WASM.deadline, 1, { pluginConfig: config("record"), rootId: "deadline" });
  const out = vm!.startRoot({ pluginConfig: config("lookup"), rootId: "deadline" });
  const one = (i: number, root = vm!.root) => {
    const s = vm!.newStream({ root });
    s.requestHeaders({ ":authority": "a", ":path": "/", ":method": "GET", "x-request-id": `id-${i}`, "x-resilience-deadline-ms": "5000" }, true);
    s.responseHeaders({ ":status": "200" }, true);
    s.finish();
    return s;
  };
  for (let i = 0; i < 1_000; i++) one(i);
  const sum = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
  const inbound = one(1_000_001).hostCallCount;
  const outbound = one(1_000_002, out).hostCallCount;
  console.log(`\nhost calls per request: inbound (record) ${sum(inbound)} ${JSON.stringify(inbound)}`);
  console.log(`host calls per request: outbound (lookup) ${sum(outbound)} ${JSON.stringify(outbound)}`);
}
