// `npm run bench`: what the binding and the service-metrics filter cost in Envoy, against the floor (an empty Wasm
// filter built on the same binding) and no filter at all, in one run; plus host calls per request and the emulator's
// cost per stream.
import { bench, directResponse, hcm, withoutWasm } from "./lib.js";
import type { Bootstrap } from "../harness/index.js";

const CONFIG = "envoy-configs/service-metrics.yaml";

function emptyFilter(cfg: Bootstrap): void {
  directResponse(cfg);
  const wasm = hcm(cfg).http_filters[0].typed_config.config;
  wasm.name = "empty-filter";
  wasm.root_id = "empty-filter";
  wasm.vm_config.code.local.filename = "build/fixtures/empty-filter.wasm";
  delete wasm.configuration;
}

await bench("service-metrics: cost per request", [
  { name: "no filter", envoy: { config: CONFIG, mutate: (c) => { directResponse(c); withoutWasm(c); } } },
  { name: "empty Wasm filter (floor)", envoy: { config: CONFIG, mutate: emptyFilter } },
  { name: "service-metrics", envoy: { config: CONFIG, mutate: directResponse, wasm: { "service-metrics": "build/service-metrics.wasm" } }, wrkArgs: ["-H", "host: service-a"] },
]);
