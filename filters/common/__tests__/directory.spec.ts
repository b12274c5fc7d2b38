import { Directory } from "../directory";

describe("the shared directory's value", () => {
  it("admits up to the cap, then refuses new names but keeps the slots it gave", () => {
    const d = new Directory("");
    expect(d.admit("a", 2)).toBe(0);
    expect(d.admit("b", 2)).toBe(1);
    expect(d.admit("c", 2)).toBe(-1);
    expect(d.admit("a", 2)).toBe(0);
    expect(d.names.length).toBe(2);
  });

  it("keeps slots across its shared-data encoding", () => {
    const d = new Directory("x\ny");
    expect(d.slotOf("y")).toBe(1);
    expect(d.slotOf("z")).toBe(-1);
    const back = new Directory(d.encode());
    expect(back.slotOf("x")).toBe(0);
    expect(back.names.length).toBe(2);
  });
});
