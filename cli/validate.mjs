// The validator's core: finds a module's plugin configurations in a file (plain JSON, plain YAML, an Istio WasmPlugin
// or an Envoy bootstrap) and runs each through the module's own compiled parser in the emulator, so the verdict and
// the message are the ones Envoy logs. The emulator is passed in (the package's compiled one, or the repo's source).
import { basename, extname } from "node:path";
import { parseAllDocuments } from "yaml";

/** Every module the package ships, in build order. */
export const MODULES = ["deadline", "outlier-breaker", "resilience", "retry-budget", "service-metrics", "traffic-split"];

const WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue";

/**
 * The configurations of `module` in a file, each as the exact text the module receives: a .json file is taken byte for
 * byte (so syntax errors keep their positions); YAML is a plain configuration, an Istio WasmPlugin (spec.pluginConfig,
 * as the JSON Istio hands over) or an Envoy bootstrap (every Wasm filter loading `<module>.wasm`, its StringValue).
 * @returns {{ where: string, text: string, rootId?: string }[]} rootId: the root_id the file names, if it names one
 */
export function configurationsIn(fileName, text, module) {
  const ext = extname(fileName).toLowerCase();
  if (ext === ".json" || fileName === "-") {
    const trimmed = text.trimStart();
    // A JSON bootstrap or WasmPlugin is still searched; anything else is the configuration itself.
    if (trimmed.startsWith("{")) {
      try {
        const doc = JSON.parse(text);
        const found = fromDocument(doc, module, "");
        if (found !== null) return found;
      } catch { /* not JSON: the module reports the syntax error */ }
    }
    return [{ where: "", text }];
  }
  const docs = parseAllDocuments(text, { merge: true });
  const out = [];
  docs.forEach((d, i) => {
    if (d.errors.length > 0) throw new Error(`${fileName}: not valid YAML: ${d.errors[0].message}`);
    const doc = d.toJS({ maxAliasCount: -1 });
    if (doc === null || doc === undefined) return;
    const at = docs.length > 1 ? `document ${i + 1}` : "";
    const found = fromDocument(doc, module, at);
    if (found !== null) out.push(...found);
    else out.push({ where: at, text: JSON.stringify(doc) });
  });
  return out;
}

/** The configurations a bootstrap or WasmPlugin holds for `module`, or null when the document is neither. */
function fromDocument(doc, module, at) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return null;
  const prefix = at ? `${at}: ` : "";
  if (doc.kind === "WasmPlugin" && doc.spec) {
    // A manifest for another of the package's modules (pluginName is its root_id) is not this module's.
    if (MODULES.includes(doc.spec.pluginName) && doc.spec.pluginName !== module) return [];
    return [{ where: `${prefix}WasmPlugin ${doc.metadata?.name ?? ""}`.trim(), text: JSON.stringify(doc.spec.pluginConfig ?? {}),
      rootId: doc.spec.pluginName ?? "" }];
  }
  if (doc.static_resources || doc.admin || doc.node) {
    const out = [];
    for (const { path, config } of wasmFilters(doc)) {
      const file = config.vm_config?.code?.local?.filename;
      const name = typeof file === "string" ? basename(file).replace(/(\.debug)?\.wasm$/u, "") : undefined;
      if (name !== module) continue;
      const c = config.configuration;
      let text = "";
      if (c !== undefined) {
        if (c["@type"] !== STRING_VALUE) throw new Error(`${path}: configuration is ${c["@type"]}; the modules read a ${STRING_VALUE}`);
        text = c.value ?? "";
      }
      out.push({ where: `${prefix}${path} (${config.name ?? config.root_id ?? module})`, text, rootId: config.root_id ?? "" });
    }
    return out;
  }
  return null;
}

/** Every Wasm HTTP filter's `config` in a parsed bootstrap, with a readable path. */
function wasmFilters(node, path = "", out = []) {
  if (Array.isArray(node)) node.forEach((n, i) => wasmFilters(n, `${path}[${i}]`, out));
  else if (node !== null && typeof node === "object") {
    if (node["@type"] === WASM_TYPE && node.config) out.push({ path: path.replace(/^\./u, ""), config: node.config });
    for (const [k, v] of Object.entries(node)) wasmFilters(v, `${path}.${k}`, out);
  }
  return out;
}

/**
 * Starts the module with `text` as its plugin configuration, as Envoy does (on_vm_start, then on_configure).
 * @param emulator the emulator's exports (Host, LogLevel, compileModule)
 * @param wasm a compiled module or a path to one
 * @param rootId the plugin's root_id (a module refuses one it does not register, as in Envoy)
 * @returns {{ accepted: boolean, errors: string[], version: string | undefined }} errors: the critical lines
 */
export function validate(emulator, wasm, module, text, rootId = module) {
  const { Host, LogLevel, compileModule } = emulator;
  const compiled = typeof wasm === "string" ? compileModule(wasm) : wasm;
  const host = new Host();
  const vm = host.createVm(compiled, {});
  const root = vm.startRoot({ pluginConfig: text, rootId, pluginName: module });
  const accepted = root.vmStartResult === true && root.configureResult === true;
  const version = host.logs.map((l) => /^resilience filters (\S+) /u.exec(l.message)?.[1]).find((v) => v !== undefined);
  return { accepted, errors: accepted ? [] : host.logsAt(LogLevel.Critical).map((l) => l.message), version };
}
