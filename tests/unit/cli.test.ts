// The validator CLI (cli/cli.mjs, cli/validate.mjs) says what Envoy says: for a sample of the bad-config corpus and
// the shipped configurations of every module, its verdict and its line equal what a real Envoy logs when it loads the
// same module with the same configuration (`envoy --mode validate` runs on_configure). Then the command itself: exit
// codes, and the file forms it reads (JSON byte for byte, plain YAML, an Istio WasmPlugin, an Envoy bootstrap, stdin).
// Needs `node build/build.mjs` first; compiles dist/ (tsconfig.pkg.json) as `npm pack` does.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as emulator from "../emulator/index.js";
import { resolveEnvoyBinary } from "../harness/index.js";
import { casesFor, MODULES, shippedConfig } from "./bad-configs/corpus.js";
import { configurationsIn, validate } from "../../cli/validate.mjs";

const SAMPLE_PER_MODULE = 4;
const VERSION = JSON.parse(readFileSync("package.json", "utf8")).version;
const tmp = mkdtempSync(join(tmpdir(), "cli-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A bootstrap that loads build/<module>.wasm with `config` as its plugin configuration. */
function bootstrap(module: string, config: string): string {
  return JSON.stringify({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: "l", address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{ filters: [{
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix: "l", route_config: { virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200 } }] }] },
            http_filters: [
              { name: "envoy.filters.http.wasm", typed_config: {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                config: { name: module, root_id: module, vm_config: { vm_id: "v", runtime: "envoy.wasm.runtime.v8",
                  code: { local: { filename: join(process.cwd(), "build", `${module}.wasm`) } } },
                configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: config } },
              } },
              { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
            ],
          },
        }] }],
      }],
    },
  });
}

/** What Envoy says about `config`: accepted, or the module's critical lines. */
function envoySays(module: string, config: string, n: number): { accepted: boolean; lines: string[] } {
  const file = join(tmp, `${module}-${n}.json`);
  writeFileSync(file, bootstrap(module, config));
  const r = spawnSync(resolveEnvoyBinary(), ["--mode", "validate", "-c", file, "-l", "critical"], { encoding: "utf8" });
  // Envoy 1.40 prefixes a module's log line with "wasm log <root_id> <vm_id>: ".
  const prefix = `wasm log ${module} v: `;
  const lines = (r.stdout + r.stderr).split("\n").filter((l) => l.includes(prefix)).map((l) => l.slice(l.indexOf(prefix) + prefix.length));
  return { accepted: r.status === 0, lines };
}

describe("the CLI's verdict and line are Envoy's", () => {
  for (const module of MODULES) {
    test(`${module}: the shipped configuration and ${SAMPLE_PER_MODULE} corpus cases`, () => {
      const wasm = emulator.compileModule(`build/${module}.wasm`);
      const cases = casesFor(module);
      // Evenly spread over the corpus (wrong types, ranges, misspellings, contradictions, syntax, document problems).
      const sample = [JSON.stringify(shippedConfig(module)),
        ...Array.from({ length: SAMPLE_PER_MODULE }, (_, i) => cases[Math.floor((i * cases.length) / SAMPLE_PER_MODULE)].text)];
      sample.forEach((text, i) => {
        const ours = validate(emulator, wasm, module, text);
        const envoy = envoySays(module, text, i);
        assert.equal(ours.accepted, envoy.accepted, `verdicts differ for ${text.slice(0, 200)}: Envoy ${JSON.stringify(envoy.lines)}`);
        assert.deepEqual(ours.errors, envoy.lines);
        // The module announces the package's version (assembly/version.ts = package.json's, tests/unit/version.test.ts).
        assert.equal(ours.version, VERSION);
      });
    });
  }
});

describe("envoy-resilience-filters validate", () => {
  const cli = (args: string[], input?: string) => spawnSync(process.execPath, ["cli/cli.mjs", ...args], { encoding: "utf8", input });
  before(() => {
    const tsc = spawnSync("node_modules/.bin/tsc", ["-p", "tsconfig.pkg.json"], { encoding: "utf8" });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  });

  test("a shipped bootstrap: every Wasm filter loading the module is checked and accepted (exit 0)", () => {
    const r = cli(["validate", "resilience", "envoy-configs/sidecar.yaml"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.match(/: accepted by resilience \d+\.\d+\.\d+/gu)?.length, 2, r.stdout);
  });

  test("an Istio WasmPlugin: its pluginConfig", () => {
    const r = cli(["validate", "traffic-split", "istio/traffic-split.yaml"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /WasmPlugin traffic-split: accepted by traffic-split/u);
  });

  test("a JSON file is read byte for byte: a syntax error keeps its line and column (exit 1)", () => {
    const file = join(tmp, "bad.json");
    writeFileSync(file, '{\n  "retryRatio": 0.5,\n  "maxRetries" 2\n}');
    const r = cli(["validate", "retry-budget", file]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const line = validate(emulator, "build/retry-budget.wasm", "retry-budget", '{\n  "retryRatio": 0.5,\n  "maxRetries" 2\n}').errors[0];
    assert.match(line, /syntax error at line 3 column 16/u);
    assert.equal(r.stdout, `${file}: refused by retry-budget ${/\d+\.\d+\.\d+/u.exec(r.stdout)?.[0]}\n  ${line}\n`);
  });

  test("plain YAML and stdin", () => {
    const file = join(tmp, "deadline.yaml");
    writeFileSync(file, "reporter: gateway\nincoming: shorten\ndefaultMs: 2000\nmaxMs: 1000\n");
    const r = cli(["validate", "deadline", file]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /deadline: field "defaultMs": 2000 is above maxMs 1000/u);
    const s = cli(["validate", "deadline", "-"], '{"reporter": "gateway"}');
    assert.equal(s.status, 0, s.stdout + s.stderr);
  });

  test("usage errors exit 2: an unknown module, a missing file, a bootstrap without the module", () => {
    assert.equal(cli(["validate", "breaker", "x.json"]).status, 2);
    assert.equal(cli(["validate", "deadline", join(tmp, "none.json")]).status, 2);
    const r = cli(["validate", "deadline", "envoy-configs/retry-budget.yaml"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /no configuration for deadline/u);
  });

  test("path and version", () => {
    assert.equal(cli(["path", "resilience"]).stdout.trim(), join(process.cwd(), "build", "resilience.wasm"));
    assert.match(cli(["version"]).stdout, /^\d+\.\d+\.\d+\n$/u);
  });

  test("configurationsIn finds every filter of a bootstrap by the module file it loads, with its root_id", () => {
    const found = configurationsIn("x.yaml", bootstrap("deadline", '{"reporter": "gateway"}'), "deadline");
    assert.deepEqual(found.map((c) => [c.text, c.rootId]), [['{"reporter": "gateway"}', "deadline"]]);
  });
});
