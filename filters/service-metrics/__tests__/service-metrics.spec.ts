import { ConfigReader } from "../../../assembly/config";
import { parseConfig, Naming } from "../config";
import { DestinationKind } from "../../common/destination";
import { codeClass, codeKey, codeLabel, CODE_OTHER, flagIndex, FLAG_LABELS } from "../core";

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
