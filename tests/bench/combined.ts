// `node --import tsx tests/bench/combined.ts`: what all five filters cost per request, as five Wasm filters in a chain
// (one module each, one VM call per filter per callback) and as the combined module (one Wasm filter, one pass),
// against no filter and the empty Wasm filter, in one run. Every variant proxies a healthy request to a loopback
// listener of the same Envoy, through envoy-configs/resilience.yaml's route to inventory.
import { bench, emptyWasm, hcm, loopbackUpstream, withoutWasm } from "./lib.js";
import type { Bootstrap } from "../harness/index.js";

const CONFIG = "envoy-configs/resilience.yaml";
const ORDER = ["service-metrics", "deadline", "traffic-split", "outlier-breaker", "retry-budget"];

/** Replaces the combined module by the five single-filter modules, each with its section of the combined config. */
function chainOfFive(cfg: Bootstrap): void {
  loopbackUpstream(cfg);
  const h = hcm(cfg);
  const combined = h.http_filters[0];
  const sections = JSON.parse(combined.typed_config.config.configuration.value);
  const filters = ORDER.map((name) => {
    const f = structuredClone(combined);
    const c = f.typed_config.config;
    c.name = name;
    c.root_id = name;
    c.vm_config.code.local.filename = `build/${name}.wasm`;
    c.configuration.value = JSON.stringify(sections[name] ?? {});
    return f;
  });
  h.http_filters = [...filters, ...h.http_filters.slice(1)];
}

const host = ["-H", "Host: inventory"];
await bench("all five filters: a chain of five modules vs the combined module", [
  { name: "no filter", envoy: { config: CONFIG, mutate: (c) => { loopbackUpstream(c); withoutWasm(c); } }, wrkArgs: host },
  { name: "empty Wasm filter", envoy: { config: CONFIG, mutate: (c) => { loopbackUpstream(c); emptyWasm(c); } }, wrkArgs: host },
  {
    name: "five filters, five modules",
    envoy: { config: CONFIG, mutate: chainOfFive, wasm: Object.fromEntries(ORDER.map((n) => [n, `build/${n}.wasm`])) },
    wrkArgs: host,
  },
  { name: "five filters, combined module", envoy: { config: CONFIG, mutate: loopbackUpstream, wasm: { resilience: "build/resilience.wasm" } }, wrkArgs: host },
]);
