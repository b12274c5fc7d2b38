import { serializePairs, deserializePairs, HeaderPair } from "../host";
import { sanitizeLabelValue, taggedName } from "../metrics";
import { stripPort, StreamView } from "../stream";
import { splitOn } from "../text";

describe("header pair serialization", () => {
  it("lays out count, sizes, then NUL-terminated keys and values", () => {
    const buf = serializePairs([new HeaderPair(":status", "503"), new HeaderPair("retry-after", "5")]);
    const base = changetype<usize>(buf);
    expect(load<u32>(base)).toBe(2);
    expect(load<u32>(base + 4)).toBe(7);
    expect(load<u32>(base + 8)).toBe(3);
    expect(load<u32>(base + 12)).toBe(11);
    expect(load<u32>(base + 16)).toBe(1);
    // 4 + 2*8 + (7+1+3+1) + (11+1+1+1)
    expect(buf.byteLength).toBe(4 + 16 + 12 + 14);
    expect(load<u8>(base + 20 + 7)).toBe(0);
    expect(load<u8>(base + 20 + 7 + 1 + 3)).toBe(0);
  });

  it("serializes an empty map as a zero count", () => {
    const buf = serializePairs([]);
    expect(buf.byteLength).toBe(4);
    expect(load<u32>(changetype<usize>(buf))).toBe(0);
  });

  it("round-trips UTF-8 names and values, repeated keys kept in order", () => {
    const pairs = [new HeaderPair("x-a", "1"), new HeaderPair("x-a", "2"), new HeaderPair("x-ü", "ñ€")];
    const back = deserializePairs(serializePairs(pairs));
    expect(back.length).toBe(3);
    expect(back[0].value).toBe("1");
    expect(back[1].value).toBe("2");
    expect(back[2].name).toBe("x-ü");
    expect(back[2].value).toBe("ñ€");
  });

  it("stops at a truncated buffer instead of reading past it", () => {
    const full = serializePairs([new HeaderPair("a", "b"), new HeaderPair("c", "d")]);
    const cut = full.slice(0, full.byteLength - 3);
    expect(deserializePairs(cut).length).toBe(1);
    expect(deserializePairs(new ArrayBuffer(2)).length).toBe(0);
  });

  it("refuses a count larger than the buffer", () => {
    const buf = new ArrayBuffer(8);
    store<u32>(changetype<usize>(buf), 1000);
    expect(deserializePairs(buf).length).toBe(0);
  });
});

describe("metric labels", () => {
  it("keeps safe label values unchanged", () => {
    expect(sanitizeLabelValue("service-a.default.svc_1")).toBe("service-a.default.svc_1");
  });

  it("replaces characters that would break tag extraction", () => {
    expect(sanitizeLabelValue("a;.;b=.=c d")).toBe("a_._b_._c_d");
  });

  it("cuts values to 64 characters", () => {
    expect(sanitizeLabelValue("x".repeat(100)).length).toBe(64);
  });

  it("encodes labels first, in order, before the metric name", () => {
    expect(taggedName(["reporter", "destination_service"], ["outbound", "a|b"], "m_total"))
      .toBe("reporter=.=outbound;.;destination_service=.=a_b;.;m_total");
  });

  it("keeps a SPIFFE identity whole (':' and '/' cannot break tag extraction)", () => {
    expect(sanitizeLabelValue("spiffe://cluster.local/ns/default/sa/reviews")).toBe("spiffe://cluster.local/ns/default/sa/reviews");
  });
});

describe("authority parsing", () => {
  it("strips a port", () => {
    expect(stripPort("service-a:8080")).toBe("service-a");
    expect(stripPort("service-a")).toBe("service-a");
  });

  it("keeps IPv6 literals whole", () => {
    expect(stripPort("[::1]:80")).toBe("[::1]");
    expect(stripPort("[::1]")).toBe("[::1]");
  });
});

describe("a pooled stream view", () => {
  it("is, after reset, byte for byte a new view but for its two header arrays, which it keeps", () => {
    const fresh = new StreamView(9);
    const used = new StreamView(1);
    const base = changetype<usize>(used);
    const size = offsetof<StreamView>();
    const arrays = offsetof<StreamView>("headerNames");
    const arraysEnd = offsetof<StreamView>("headerValues") + sizeof<usize>();
    expect(arraysEnd - arrays).toBe(2 * sizeof<usize>(), "the two header arrays are neighbours");
    const names = load<usize>(base + offsetof<StreamView>("headerNames"));
    // Every byte but the arrays written with a pattern no initial value has: one that reset() leaves alone shows.
    memory.fill(base, 0xa5, arrays);
    memory.fill(base + arraysEnd, 0xa5, size - arraysEnd);
    used.reset(9);
    let differing: i32 = -1;
    for (let at: usize = 0; at < size; at++) {
      if (at >= arrays && at < arraysEnd) continue;
      if (load<u8>(base + at) != load<u8>(changetype<usize>(fresh) + at)) {
        differing = <i32>at;
        break;
      }
    }
    expect(differing).toBe(-1, "the first byte offset where reset() left an old value");
    expect(load<usize>(base + offsetof<StreamView>("headerNames"))).toBe(names);
  });
});

describe("splitOn", () => {
  it("cuts as String#split does for a non-empty separator", () => {
    const cases = ["", "a", "a,b", ",a,,b,", ",,", "5xx,reset , connect-failure"];
    for (let i = 0; i < cases.length; i++) {
      const want = cases[i].split(",");
      const got = splitOn(cases[i], ",");
      expect(got.length).toBe(want.length, cases[i]);
      for (let j = 0; j < want.length; j++) expect(got[j]).toBe(want[j], cases[i]);
    }
    const multi = splitOn("a\x1e\x1eb\x1e", "\x1e\x1e");
    expect(multi.length).toBe(2);
    expect(multi[1]).toBe("b\x1e");
  });
});
