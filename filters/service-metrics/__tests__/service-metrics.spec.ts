import { ConfigReader } from "../../../assembly/config";
import { parseConfig, Naming } from "../config";
import { DestinationKind } from "../../common/destination";
import { codeClass, boundedCode, flagIndex, FLAG_LABELS, isUpstreamFailure } from "../core";

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
    expect(boundedCode(404)).toBe(404);
    expect(boundedCode(1000)).toBe(0);
  });

  it("names the most telling response flag", () => {
    expect(FLAG_LABELS[flagIndex(0)]).toBe("-");
    expect(FLAG_LABELS[flagIndex(0x10)]).toBe("UR");
    expect(FLAG_LABELS[flagIndex(0x4 | 0x10)]).toBe("UT");
    expect(FLAG_LABELS[flagIndex(0x20)]).toBe("UF");
    expect(FLAG_LABELS[flagIndex(0x1000)]).toBe("other");
  });

  it("counts resets, connect failures and timeouts as upstream failures, not client disconnects", () => {
    expect(isUpstreamFailure(0x10)).toBe(true);
    expect(isUpstreamFailure(0x20)).toBe(true);
    expect(isUpstreamFailure(0x4)).toBe(true);
    expect(isUpstreamFailure(0x4000)).toBe(false);
    expect(isUpstreamFailure(0)).toBe(false);
  });
});
