// Turns a shipped Envoy bootstrap (fixed ports, repo-relative file names) into one a test can run:
// listeners and admin on fresh 127.0.0.1 ports, named clusters aimed at scripted upstreams,
// Wasm modules and other files at paths Envoy can open (absolute on the host, or copied into a container).
import { existsSync, readFileSync } from "node:fs";
import { basename, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";
import { projectRoot } from "./envoy-bin.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Bootstrap = Record<string, any>;

/** Something that listens on 127.0.0.1: a port number or an object with one (an Upstream). */
export type PortLike = number | { port: number };

export interface RewriteOptions {
  /** Cluster name → the upstream(s) its endpoints should be replaced with (127.0.0.1:<port> each). */
  clusters?: Record<string, PortLike | PortLike[]>;
  /** Module name → .wasm file; replaces every vm_config.code.local.filename whose basename is `<name>.wasm`. */
  wasm?: Record<string, string>;
  /** Where file references point: "host" = absolute host paths, "container" = copies under /etc/envoy. */
  target: "host" | "container";
}

export interface FileCopy {
  /** Absolute path on the host. */
  source: string;
  /** Path inside the container. */
  target: string;
}

export interface Rewritten {
  config: Bootstrap;
  adminPort: number;
  /** Listener name → port, in config order. */
  listeners: Array<{ name: string; port: number }>;
  /** Files to copy into the container (empty for "host"). */
  files: FileCopy[];
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "0.0.0.0", "::1", "::"]);
export const CONTAINER_CONFIG_DIR = "/etc/envoy";

/** Reads a bootstrap YAML (or JSON) file, path relative to the project root or absolute. */
export function loadBootstrap(path: string): Bootstrap {
  const abs = resolveProjectPath(path);
  if (!existsSync(abs)) throw new Error(`Envoy config ${path} does not exist (looked at ${abs})`);
  let doc: unknown;
  try {
    doc = parse(readFileSync(abs, "utf8"), { merge: true });
  } catch (e) {
    throw new Error(`Envoy config ${path} is not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new Error(`Envoy config ${path} must be a YAML mapping (a bootstrap object), got ${JSON.stringify(doc)?.slice(0, 80)}`);
  }
  return doc as Bootstrap;
}

export function resolveProjectPath(path: string): string {
  return isAbsolute(path) ? path : resolve(projectRoot, path);
}

function portOf(p: PortLike, where: string): number {
  const port = typeof p === "number" ? p : p?.port;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`${where}: expected a port number or an object with a port, got ${JSON.stringify(p)}`);
  }
  return port;
}

function socketAddress(port: number) {
  return { socket_address: { address: "127.0.0.1", port_value: port } };
}

/** Every object in the tree (depth first), with the key it sits under. */
function* walk(node: unknown, key = ""): Generator<{ key: string; obj: Record<string, unknown> }> {
  if (Array.isArray(node)) {
    for (const item of node) yield* walk(item, key);
  } else if (node !== null && typeof node === "object") {
    const obj = node as Record<string, unknown>;
    yield { key, obj };
    for (const [k, v] of Object.entries(obj)) yield* walk(v, k);
  }
}

/**
 * Rewrites `config` in place. `freePorts(n)` supplies n distinct free ports:
 * one for admin, then one per listener with a socket address.
 */
export function rewriteBootstrap(config: Bootstrap, opts: RewriteOptions, freePorts: number[]): Rewritten {
  const ports = [...freePorts];
  const take = () => {
    const p = ports.shift();
    if (p === undefined) throw new Error("rewriteBootstrap: not enough free ports supplied");
    return p;
  };
  const remap = new Map<number, number>(); // original port → new port, for endpoints that point back at this Envoy

  // Admin: the harness needs it, so add one when the config has none.
  const adminPort = take();
  config.admin ??= {};
  const oldAdmin = config.admin.address?.socket_address?.port_value;
  if (Number.isInteger(oldAdmin)) remap.set(oldAdmin, adminPort);
  config.admin.address = socketAddress(adminPort);

  const listeners: Rewritten["listeners"] = [];
  const staticListeners: Bootstrap[] = config.static_resources?.listeners ?? [];
  staticListeners.forEach((l, i) => {
    const sa = l.address?.socket_address;
    if (!sa) return; // internal or pipe listener: nothing to move
    const port = take();
    if (Number.isInteger(sa.port_value)) remap.set(sa.port_value, port);
    l.address = socketAddress(port);
    delete l.additional_addresses; // would still hold fixed ports
    listeners.push({ name: typeof l.name === "string" ? l.name : `listener_${i}`, port });
  });

  rewriteClusters(config, opts.clusters ?? {}, remap);
  const files = rewriteFiles(config, opts);
  return { config, adminPort, listeners, files };
}

/** How many ports rewriteBootstrap will take for this config. */
export function portsNeeded(config: Bootstrap): number {
  const listeners: Bootstrap[] = config.static_resources?.listeners ?? [];
  return 1 + listeners.filter((l) => l.address?.socket_address).length;
}

function rewriteClusters(config: Bootstrap, wanted: Record<string, PortLike | PortLike[]>, remap: Map<number, number>) {
  const clusters: Bootstrap[] = config.static_resources?.clusters ?? [];
  const byName = new Map(clusters.map((c) => [c.name, c]));
  for (const [name, target] of Object.entries(wanted)) {
    const cluster = byName.get(name);
    if (!cluster) {
      throw new Error(`clusters: no static cluster named "${name}" in the config (it has: ${[...byName.keys()].join(", ") || "none"})`);
    }
    const targets = (Array.isArray(target) ? target : [target]).map((t) => portOf(t, `clusters["${name}"]`));
    if (targets.length === 0) throw new Error(`clusters["${name}"]: give at least one upstream`);
    const groups: Bootstrap[] | undefined = cluster.load_assignment?.endpoints;
    const template: Bootstrap = groups?.[0]?.lb_endpoints?.[0];
    if (!template?.endpoint) {
      throw new Error(`clusters["${name}"]: cluster has no load_assignment.endpoints[0].lb_endpoints[0].endpoint to rewrite`);
    }
    const { lb_endpoints: _drop, ...locality } = groups![0];
    cluster.load_assignment.endpoints = [
      {
        ...locality,
        lb_endpoints: targets.map((port) => {
          const ep = structuredClone(template);
          ep.endpoint.address = socketAddress(port);
          return ep;
        }),
      },
    ];
  }
  // Clusters that loop back to one of this Envoy's own listeners follow that listener to its new port.
  for (const cluster of clusters) {
    if (cluster.name in wanted) continue;
    for (const { key, obj } of walk(cluster.load_assignment)) {
      if (key !== "socket_address") continue;
      const moved = remap.get(obj.port_value as number);
      if (moved !== undefined && LOOPBACK.has(String(obj.address))) {
        obj.address = "127.0.0.1";
        obj.port_value = moved;
      }
    }
  }
}

function rewriteFiles(config: Bootstrap, opts: RewriteOptions): FileCopy[] {
  const wasm = new Map(Object.entries(opts.wasm ?? {}).map(([name, file]) => [`${name}.wasm`, { name, file }]));
  const usedWasm = new Set<string>();
  const files: FileCopy[] = [];
  const copied = new Map<string, string>(); // host path → container path
  const place = (hostPath: string): string => {
    if (opts.target === "host") return hostPath;
    let target = copied.get(hostPath);
    if (!target) {
      const name = basename(hostPath);
      const taken = files.some((f) => basename(f.target) === name);
      target = taken ? `${CONTAINER_CONFIG_DIR}/files/${files.length}-${name}` : `${CONTAINER_CONFIG_DIR}/${name}`;
      copied.set(hostPath, target);
      files.push({ source: hostPath, target });
    }
    return target;
  };

  // vm_config.code.local.filename: the Wasm modules.
  const done = new Set<object>();
  for (const { key, obj } of walk(config)) {
    if (key !== "vm_config") continue;
    const local = (obj.code as Bootstrap | undefined)?.local;
    if (typeof local?.filename !== "string") continue;
    const original: string = local.filename;
    const match = wasm.get(basename(original));
    const hostPath = resolveProjectPath(match ? match.file : original);
    if (match) usedWasm.add(match.name);
    if (!existsSync(hostPath)) {
      const what = match ? `wasm["${match.name}"]` : `vm_config.code.local.filename "${original}"`;
      throw new Error(`${what}: Wasm file ${hostPath} does not exist (run \`npm run build\`?)`);
    }
    local.filename = place(hostPath);
    done.add(local);
  }
  for (const { name } of wasm.values()) {
    if (!usedWasm.has(name)) {
      throw new Error(`wasm["${name}"]: no vm_config.code.local.filename in the config ends in ${name}.wasm`);
    }
  }

  // Every other DataSource-style `filename` (certificates, Lua files...): relative to the project root.
  for (const { obj } of walk(config)) {
    if (done.has(obj) || typeof obj.filename !== "string") continue;
    const hostPath = resolveProjectPath(obj.filename);
    if (opts.target === "container" && !existsSync(hostPath)) continue; // maybe inside the image; Envoy will say
    obj.filename = place(hostPath);
  }
  return files;
}
