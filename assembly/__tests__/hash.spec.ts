import { FNV_OFFSET, fmix64, fnvByte, fnvString, hashText } from "../hash";

/** traffic-split's sticky point, composed from the primitives (persisted assignments: pinned below). */
function sticky(salt: string, key: string): u32 {
  const h = fmix64(fnvString(fnvByte(fnvString(FNV_OFFSET, salt), 0xff), key));
  return <u32>(((h >> 32) * 10000) >> 32);
}

describe("hash", () => {
  it("is FNV-1a 64 over UTF-8 (published test vectors)", () => {
    expect(hashText("")).toBe(0xcbf29ce484222325);
    expect(hashText("a")).toBe(0xaf63dc4c8601ec8c);
    expect(hashText("foobar")).toBe(0x85944171f73967e8);
  });

  it("hashes the UTF-8 bytes, surrogate pairs as one 4-byte character", () => {
    expect(hashText("é")).toBe(fnvByte(fnvByte(FNV_OFFSET, 0xc3), 0xa9));
    expect(hashText("😀")).toBe(fnvByte(fnvByte(fnvByte(fnvByte(FNV_OFFSET, 0xf0), 0x9f), 0x98), 0x80));
  });

  it("keeps sticky assignments and request-id hashes of earlier versions bit for bit", () => {
    expect(sticky("v1", "user-1")).toBe(5753);
    expect(sticky("", "josé😀")).toBe(871);
    expect(sticky("canary", "alice")).toBe(4410);
    expect(fmix64(hashText("0f8fad5b-d9cb-469f-a165-70867728950e"))).toBe(0x564e1752fb452f46);
  });
});
