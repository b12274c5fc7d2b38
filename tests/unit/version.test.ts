// The version a module logs at start is the package's version.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

test("assembly/version.ts carries package.json's version", () => {
  const pkg = JSON.parse(readFileSync("package.json", "utf8"));
  const src = readFileSync("assembly/version.ts", "utf8");
  assert.equal(/BUNDLE_VERSION = "([^"]+)"/.exec(src)?.[1], pkg.version);
});
