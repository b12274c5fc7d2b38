// A generated Envoy bootstrap for the hostile and fuzz suites: one listener whose route table serves a fixed set of
// services (each its own cluster, named like the service, so authority- and cluster-keyed state get the same label),
// no catch-all (any other Host is a 404 never sent upstream), and a chain of Wasm filters given as module + config.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { projectRoot } from "../../harness/index.js";

/** One Wasm filter of the chain: build/<module>.wasm with root id `root` (default: the module) and its configuration. */
export interface ChainFilter {
  module: string;
  config: string;
  root?: string;
}

/** A served service: its virtual host answers every spelling of `name` (case, port, trailing dot). */
export interface Service {
  name: string;
  /** Route timeout in ms. Default 5000. */
  timeoutMs?: number;
  /** Requests carrying this header (any value) go to cluster `<name>-<cluster>` instead of `<name>`. */
  headerRoute?: { header: string; exact?: string; cluster: string };
}

const STATS_TAGS = (parse(readFileSync(join(projectRoot, "envoy-configs/stats-tags.yaml"), "utf8")) as { stats_tags: unknown[] }).stats_tags;

/** Every cluster the services need (a service's own and its header-routed one). */
export function clusterNames(services: Service[]): string[] {
  return services.flatMap((s) => (s.headerRoute ? [s.name, `${s.name}-${s.headerRoute.cluster}`] : [s.name]));
}

function route(cluster: string, timeoutMs: number, match: object = {}): object {
  return { match: { prefix: "/", ...match }, route: { cluster, timeout: `${timeoutMs / 1000}s` } };
}

function wasmFilter(f: ChainFilter, i: number): object {
  const root = f.root ?? f.module;
  return {
    name: "envoy.filters.http.wasm",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
      config: {
        name: `${root}-${i}`,
        root_id: root,
        // One vm_id, as every shipped bootstrap: one shared-data namespace for the whole chain.
        vm_config: { vm_id: "resilience", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: `build/${f.module}.wasm` } } },
        configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: f.config },
      },
    },
  };
}

/** Writes the bootstrap to a fresh temp file and returns its path (for startEnvoy's `config`). */
export function writeBootstrap(services: Service[], chain: ChainFilter[], opts: { internalLoopback?: boolean; stripBeforeRouting?: string[] } = {}): string {
  const virtualHosts = services.map((s) => {
    const t = s.timeoutMs ?? 5000;
    const routes: object[] = [];
    if (s.headerRoute) {
      const h = s.headerRoute;
      const headerMatch = h.exact === undefined ? { name: h.header, present_match: true } : { name: h.header, string_match: { exact: h.exact } };
      routes.push(route(`${s.name}-${h.cluster}`, t, { headers: [headerMatch] }));
    }
    routes.push(route(s.name, t));
    return { name: s.name, domains: [s.name, `${s.name}.`, `${s.name}:*`, `${s.name}.:*`], routes };
  });
  const hcm: Record<string, unknown> = {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    stat_prefix: "ingress",
    route_config: { name: "ingress", virtual_hosts: virtualHosts },
    http_filters: [...chain.map(wasmFilter), { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
  };
  // Headers only a filter may set (a breaker's fallback header) removed before the route is picked, as the READMEs ask.
  if (opts.stripBeforeRouting?.length) {
    hcm.early_header_mutation_extensions = [{
      name: "envoy.http.early_header_mutation.header_mutation",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
        mutations: opts.stripBeforeRouting.map((remove) => ({ remove })),
      },
    }];
  }
  // A mesh sidecar trusts its peers: Envoy then keeps their x-envoy-* headers, the worst case for spoofing.
  if (opts.internalLoopback) hcm.internal_address_config = { cidr_ranges: [{ address_prefix: "127.0.0.1", prefix_len: 32 }] };
  const clusters = clusterNames(services).map((name, i) => ({
    name,
    type: "STATIC",
    connect_timeout: "1s",
    circuit_breakers: { thresholds: [{ priority: "DEFAULT", max_retries: 4294967295 }] },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 20000 + i } } } }] }] },
  }));
  const bootstrap = {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 19901 } } },
    stats_config: { stats_tags: STATS_TAGS },
    static_resources: {
      listeners: [{
        name: "ingress",
        address: { socket_address: { address: "127.0.0.1", port_value: 19000 } },
        filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm }] }],
      }],
      clusters,
    },
  };
  const dir = mkdtempSync(join(tmpdir(), "hostile-"));
  const file = join(dir, "envoy.json");
  writeFileSync(file, JSON.stringify(bootstrap, null, 1));
  return file;
}
