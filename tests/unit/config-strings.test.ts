// The project's string literals ship packed (build/size-utf8-strings.mjs: a byte per ASCII character, repeats as
// back-references) and are expanded at VM start: no release module holds a message as a UTF-16 static string, and the
// text it logs is the same, a non-ASCII value after it included. Needs `node build/build.mjs <names>` first.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { compileModule } from "../emulator/index.js";
import { MODULES, refusal } from "./bad-configs/corpus.js";

const MESSAGE = "expected a JSON object at the top level, got ";

function count(haystack: Buffer, needle: Buffer): number {
  let n = 0;
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) n++;
  return n;
}

for (const module of MODULES) {
  describe(`${module}: configuration strings`, () => {
    const bytes = readFileSync(`build/${module}.wasm`);

    test("a configuration message has no UTF-16 copy in the module", () => {
      assert.equal(count(bytes, Buffer.from(MESSAGE, "utf16le")), 0);
      assert.equal(count(bytes, Buffer.from("did you mean", "utf16le")), 0);
    });

    test("the message the module logs is decoded whole, the offending value after it", () => {
      const lines = refusal(compileModule(`build/${module}.wasm`), module, '["\u00e9\u4e2d\ud83d\ude00"]');
      assert.deepEqual(lines, [`${module}: ${MESSAGE}["\u00e9\u4e2d\ud83d\ude00"]`]);
    });
  });
}
