import { ConfigReader } from "../../../assembly/config";
import { parseConfig, Naming } from "../config";
import { DestinationKind } from "../../common/destination";
import {
  codeClass, codeKey, codeLabel, CODE_OTHER, flagIndex, FLAG_LABELS, istioReporter, securityPolicy, principalNamespace,
  istioServiceNames, grpcStatusIndex, grpcStatusLabel, isGrpc,
} from "../core";

function parse(text: string): ConfigReader {
  return ConfigReader.fromString(text, "service-metrics");
}

describe("service-metrics config", () => {
  it("runs on documented defaults with an empty configuration", () => {
    const r = parse("");
    const cfg = parseConfig(r)!;
    expect(r.error).toBeNull();
    expect(cfg.reporter).toBe("outbound");
    expect(cfg.naming).toBe(Naming.Resilience);
    expect(cfg.maxServices).toBe(100);
    expect(cfg.destination.kind).toBe(DestinationKind.Authority);
  });

  it("reads the Istio naming, inbound reporter and a header destination", () => {
    const r = parse('{"naming":"istio","reporter":"inbound","destinationKey":"header","destinationHeader":"X-Service"}');
    const c = parseConfig(r)!;
    expect(r.error).toBeNull();
    expect(c.naming).toBe(Naming.Istio);
    expect(c.reporter).toBe("inbound");
    expect(c.destination.kind).toBe(DestinationKind.Header);
    expect(c.destination.header!.text).toBe("x-service");
  });

  it("refuses a misspelled key, naming it", () => {
    const r = parse('{"reportr":"inbound"}');
    expect(parseConfig(r)).toBeNull();
    expect(r.error!.includes('unknown field "reportr"')).toBe(true, r.error!);
  });

  it("refuses a bad reporter, quoting the value", () => {
    const r = parse('{"reporter":"sideways"}');
    expect(parseConfig(r)).toBeNull();
    expect(r.error!.includes('field "reporter"')).toBe(true, r.error!);
    expect(r.error!.includes('"sideways"')).toBe(true, r.error!);
  });

  it("requires destinationHeader when the destination is a header", () => {
    const r = parse('{"destinationKey":"header"}');
    expect(parseConfig(r)).toBeNull();
    expect(r.error!.includes('field "destinationHeader"')).toBe(true, r.error!);
  });

  it("bounds maxServices", () => {
    const r = parse('{"maxServices":0}');
    expect(parseConfig(r)).toBeNull();
    expect(r.error!.includes('field "maxServices"')).toBe(true, r.error!);
  });
});

describe("service-metrics outcome labels", () => {
  it("classifies codes into classes, 0 for no response", () => {
    expect(codeClass(200)).toBe("2xx");
    expect(codeClass(503)).toBe("5xx");
    expect(codeClass(0)).toBe("0");
    expect(codeClass(999)).toBe("0");
  });

  it("bounds response_code: common codes as themselves, other codes as their class, out of range as other", () => {
    expect(codeLabel(codeKey(404))).toBe("404");
    expect(codeLabel(codeKey(503))).toBe("503");
    expect(codeLabel(codeKey(0))).toBe("0");
    expect(codeLabel(codeKey(599))).toBe("5xx");
    expect(codeLabel(codeKey(218))).toBe("2xx");
    expect(codeLabel(codeKey(199))).toBe("1xx");
    expect(codeLabel(codeKey(1000))).toBe("other");
    expect(codeLabel(codeKey(99))).toBe("other");
    expect(codeLabel(codeKey(-1))).toBe("other");
    expect(codeKey(1000)).toBe(CODE_OTHER);
    // Every code an upstream can reflect (0-999) lands on at most 43 known codes + 5 classes + "0" + "other".
    const seen = new Set<i32>();
    for (let c: i64 = 0; c < 1000; c++) seen.add(codeKey(c));
    expect(seen.size).toBe(43 + 5 + 2);
  });

  it("names the most telling response flag", () => {
    expect(FLAG_LABELS[flagIndex(0)]).toBe("-");
    expect(FLAG_LABELS[flagIndex(0x10)]).toBe("UR");
    expect(FLAG_LABELS[flagIndex(0x4 | 0x10)]).toBe("UT");
    expect(FLAG_LABELS[flagIndex(0x20)]).toBe("UF");
    expect(FLAG_LABELS[flagIndex(0x1000)]).toBe("other");
    expect(FLAG_LABELS[flagIndex(0x4000)]).toBe("DC");
    expect(FLAG_LABELS[flagIndex(0x10000000)]).toBe("DR");
  });
});

describe("service-metrics Istio naming config", () => {
  it("accepts Istio's reporter words as the two sides", () => {
    const r = parse('{"naming":"istio","reporter":"destination"}');
    const c = parseConfig(r)!;
    expect(r.error).toBeNull();
    expect(c.reporter).toBe("inbound");
    expect(parseConfig(parse('{"reporter":"source"}'))!.reporter).toBe("outbound");
  });

  it("reads both sides' workload labels, with Istio's defaults", () => {
    const r = parse('{"naming":"istio","sourceApp":"web","sourceCanonicalRevision":"v2","destinationCluster":"east","serviceNamespace":"shop","maxPrincipals":5}');
    const c = parseConfig(r)!;
    expect(r.error).toBeNull();
    expect(c.source.app).toBe("web");
    expect(c.source.canonicalRevision).toBe("v2");
    expect(c.source.name).toBe("unknown");
    expect(c.destinationWorkload.cluster).toBe("east");
    expect(c.destinationWorkload.canonicalRevision).toBe("latest");
    expect(c.serviceNamespace).toBe("shop");
    expect(c.serviceDomain).toBe("cluster.local");
    expect(c.maxPrincipals).toBe(5);
  });

  it("refuses Istio keys under the project's naming, naming the key", () => {
    const r = parse('{"destinationCanonicalService":"reviews"}');
    expect(parseConfig(r)).toBeNull();
    expect(r.error!.includes('field "destinationCanonicalService": is an Istio label')).toBe(true, r.error!);
  });

  it("bounds maxPrincipals", () => {
    const r = parse('{"naming":"istio","maxPrincipals":0}');
    expect(parseConfig(r)).toBeNull();
    expect(r.error!.includes('field "maxPrincipals"')).toBe(true, r.error!);
  });
});

describe("service-metrics Istio label values", () => {
  it("names the reporter as Istio does", () => {
    expect(istioReporter(true)).toBe("destination");
    expect(istioReporter(false)).toBe("source");
  });

  it("calls a connection mutual TLS only on the server side and only when both ends proved an identity", () => {
    expect(securityPolicy(true, false, "spiffe://a", "spiffe://b")).toBe("mutual_tls");
    expect(securityPolicy(true, false, "", "spiffe://b")).toBe("none");
    expect(securityPolicy(true, false, "", "")).toBe("none");
    expect(securityPolicy(false, false, "spiffe://a", "spiffe://b")).toBe("unknown");
  });

  it("judges the client side's upstream connection only when asked to", () => {
    expect(securityPolicy(false, true, "spiffe://b", "spiffe://a")).toBe("mutual_tls");
    expect(securityPolicy(false, true, "", "")).toBe("none");
    const r = parse('{"naming":"istio","clientSecurityPolicy":"observed"}');
    expect(parseConfig(r)!.observeClientPolicy).toBe(true);
    expect(parseConfig(parse('{"naming":"istio"}'))!.observeClientPolicy).toBe(false);
    const bad = parse('{"naming":"istio","clientSecurityPolicy":"mtls"}');
    expect(parseConfig(bad)).toBeNull();
    expect(bad.error!.includes('field "clientSecurityPolicy"')).toBe(true, bad.error!);
  });

  it("reads the namespace of a SPIFFE identity", () => {
    expect(principalNamespace("spiffe://cluster.local/ns/shop/sa/web")).toBe("shop");
    expect(principalNamespace("spiffe://cluster.local/ns/shop")).toBe("shop");
    expect(principalNamespace("spiffe://cluster.local/sa/web")).toBe("");
    expect(principalNamespace("unknown")).toBe("");
  });

  it("completes short service names and takes full ones apart", () => {
    const a = istioServiceNames("reviews", "default", "cluster.local");
    expect(a.full).toBe("reviews.default.svc.cluster.local");
    expect(a.name).toBe("reviews");
    expect(a.namespace).toBe("default");
    const b = istioServiceNames("ratings.prod.svc.cluster.local", "default", "cluster.local");
    expect(b.full).toBe("ratings.prod.svc.cluster.local");
    expect(b.name).toBe("ratings");
    expect(b.namespace).toBe("prod");
    const c = istioServiceNames("api.example.com", "default", "cluster.local");
    expect(c.name).toBe("api");
    expect(c.namespace).toBe("default");
    expect(istioServiceNames("other", "default", "cluster.local").full).toBe("other");
    expect(istioServiceNames("unrouted", "default", "cluster.local").namespace).toBe("unknown");
  });

  it("bounds grpc_response_status: empty for HTTP or no status, 0-16 as themselves, anything else other", () => {
    expect(grpcStatusLabel(grpcStatusIndex(false, 14))).toBe("");
    expect(grpcStatusLabel(grpcStatusIndex(true, -1))).toBe("");
    expect(grpcStatusLabel(grpcStatusIndex(true, 0))).toBe("0");
    expect(grpcStatusLabel(grpcStatusIndex(true, 16))).toBe("16");
    expect(grpcStatusLabel(grpcStatusIndex(true, 17))).toBe("other");
    expect(grpcStatusLabel(grpcStatusIndex(true, 1 << 40))).toBe("other");
    const seen = new Set<i32>();
    for (let s: i64 = -5; s < 100; s++) seen.add(grpcStatusIndex(true, s));
    expect(seen.size).toBe(1 + 17 + 1);
    expect(grpcStatusIndex(true, 99) < 32).toBe(true, "fits the counter key's 5 bits");
  });

  it("tells gRPC by its content type", () => {
    expect(isGrpc("application/grpc")).toBe(true);
    expect(isGrpc("application/grpc+proto")).toBe(true);
    expect(isGrpc("application/json")).toBe(false);
    expect(isGrpc(null)).toBe(false);
  });
});
