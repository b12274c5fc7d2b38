// The harness's wait helper: resolves with the probe's value, retries probe errors, and times out with what it saw.
import assert from "node:assert/strict";
import { test } from "node:test";
import { atLeast, notYet, waitFor, waitUntil, WaitTimeout } from "../harness/wait.js";
import { LogBuffer } from "../harness/log-buffer.js";

test("waitFor resolves with the first value the probe yields", async () => {
  let n = 0;
  const v = await waitFor("n to reach 3", () => (++n >= 3 ? n : undefined), { intervalMs: 1 });
  assert.equal(v, 3);
});

test("waitFor retries a probe that throws and resolves once it answers", async () => {
  let n = 0;
  const v = await waitFor("a flaky probe", () => {
    if (++n < 3) throw new Error("not listening");
    return "up";
  }, { intervalMs: 1 });
  assert.equal(v, "up");
});

test("waitFor times out naming what was awaited and the last value seen", async () => {
  let n = 0;
  const err = await waitFor("the counter to reach 1000", () => notYet(++n), { timeoutMs: 50, intervalMs: 5 }).catch((e) => e);
  assert.ok(err instanceof WaitTimeout);
  assert.match(err.message, /timed out after 50 ms waiting for the counter to reach 1000; last seen: \d+$/);
  assert.equal(err.lastSeen, n);
});

test("waitFor reports the probe's last error on timeout", async () => {
  const err = await waitFor("admin", () => Promise.reject(new Error("ECONNREFUSED")), { timeoutMs: 20, intervalMs: 5 }).catch((e) => e);
  assert.match(err.message, /waiting for admin; last seen: error: ECONNREFUSED/);
});

test("waitFor probes once even with a zero timeout", async () => {
  assert.equal(await waitFor("x", () => 7, { timeoutMs: 0 }), 7);
});

test("waitUntil accepts a number as 'at least' and may resolve with undefined", async () => {
  let c = 0;
  assert.equal(await waitUntil("c", () => ++c, 4, { intervalMs: 1 }), 4);
  assert.equal(await waitUntil("absent stat", () => undefined, (v) => v === undefined), undefined);
  assert.equal(atLeast(2)(undefined), false);
  const err = await waitUntil("stat s", () => 1, 2, { timeoutMs: 10 }).catch((e) => e);
  assert.match(err.message, /waiting for stat s \(>= 2\); last seen: 1/);
});

test("LogBuffer.waitFor finds a line appended later and only after `since`", async () => {
  const logs = new LogBuffer();
  logs.append("old: rolled back\n");
  const since = logs.length;
  const found = logs.waitFor(/rolled back/, { since, timeoutMs: 2_000 });
  setImmediate(() => logs.append("new: rolled back now\n"));
  assert.equal(await found, "new: rolled back now");
  const err = await logs.waitFor("never", { timeoutMs: 10 }).catch((e) => e);
  assert.match(err.message, /a log line matching never; last lines:\nold: rolled back/);
});
