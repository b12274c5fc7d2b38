// The Istio manifests (istio/*.yaml WasmPlugins, istio/examples/*.yaml) pass Istio's own CRD schemas, as published
// in @kubernetes-models/istio (generated from Istio's CRDs): types, enums, patterns (sha256), required fields.
// Those schemas do not refuse unknown fields (the API server prunes them), so a misspelled key is caught here only
// through the field it failed to set.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { WasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin";
import { PeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication";
import { DestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import { VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const MODELS: Record<string, new (d: any) => { validate(): void }> = {
  "extensions.istio.io/v1alpha1/WasmPlugin": WasmPlugin,
  "security.istio.io/v1/PeerAuthentication": PeerAuthentication,
  "networking.istio.io/v1/DestinationRule": DestinationRule,
  "networking.istio.io/v1/VirtualService": VirtualService,
};

function validate(doc: Doc): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  assert.ok(Model, `no schema here for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

const files = [
  ...readdirSync("istio").filter((f) => f.endsWith(".yaml")).map((f) => join("istio", f)),
  ...readdirSync(join("istio", "examples")).filter((f) => f.endsWith(".yaml")).map((f) => join("istio", "examples", f)),
];

describe("Istio manifests against Istio's CRD schemas", () => {
  for (const f of files) {
    test(`${f} is valid`, () => {
      const docs = parseAllDocuments(readFileSync(f, "utf8")).map((d) => d.toJS() as Doc);
      assert.ok(docs.length > 0);
      for (const d of docs) validate(d);
    });
  }

  test("the examples cover the switch: PERMISSIVE, then STRICT, and ISTIO_MUTUAL on the client side", () => {
    const modes = files.filter((f) => f.includes("examples")).flatMap((f) => parseAllDocuments(readFileSync(f, "utf8")).map((d) => d.toJS() as Doc));
    const peer = modes.filter((d) => d.kind === "PeerAuthentication").map((d) => d.spec.mtls.mode).sort();
    assert.deepEqual(peer, ["PERMISSIVE", "STRICT"]);
    assert.ok(modes.some((d) => d.kind === "DestinationRule" && d.spec.trafficPolicy?.tls?.mode === "ISTIO_MUTUAL"));
  });

  test("the schemas refuse what Istio would: a bad enum, a malformed sha256, a missing DestinationRule host", () => {
    const plugin = parseAllDocuments(readFileSync(join("istio", "resilience.yaml"), "utf8"))[0].toJS() as Doc;
    assert.throws(() => validate({ ...plugin, spec: { ...plugin.spec, failStrategy: "FAIL_SOMETIMES" } }), /failStrategy/);
    assert.throws(() => validate({ ...plugin, spec: { ...plugin.spec, sha256: "sha256:abc" } }), /sha256/);
    assert.throws(() => validate({ ...plugin, spec: { ...plugin.spec, phase: "BEFORE_EVERYTHING" } }), /phase/);
    const rule = parseAllDocuments(readFileSync(join("istio", "examples", "destination-rule.yaml"), "utf8"))[0].toJS() as Doc;
    const { host: _host, ...noHost } = rule.spec;
    assert.throws(() => validate({ ...rule, spec: noHost }), /host/);
  });
});
