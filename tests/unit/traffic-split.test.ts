// traffic-split.wasm in the host emulator: the compiled module in two (or more) emulated workers sharing one
// shared-data namespace, driven with a fake clock so the rollback, cool-down and ramp timings are exact.
// Needs `npm run build` (or `node build/build.mjs traffic-split`) first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { Host, LogLevel, type PropertyValue, type Vm } from "../emulator/index.js";

const WASM = fileURLToPath(new URL("../../build/traffic-split.wasm", import.meta.url));
const ROUTING = "x-traffic-subset";
const CANARY = { subsets: [{ name: "stable" }, { name: "canary", weight: 30 }], stickyBy: [{ header: "x-user-id" }] };

const metric = (subset: string, what: string) => `subset=.=${subset};.;resilience_traffic_split_${what}`;

function start(config: object | string, workers = 2, host = new Host({ vmId: "resilience" })): { host: Host; vms: Vm[] } {
  if (!existsSync(WASM)) throw new Error(`${WASM} is missing: run \`node build/build.mjs traffic-split\` first`);
  const pluginConfig = typeof config === "string" ? config : JSON.stringify(config);
  return { host, vms: host.startVms(WASM, workers, { rootId: "traffic-split", pluginName: "traffic-split", pluginConfig }) };
}

interface Exchange {
  headers?: Record<string, string> | [string, string][];
  /** Upstream status; null = the client went away before any response. */
  status?: number | null;
  props?: Record<string, PropertyValue>;
}

/** One request through `vm`; returns the routing header values the filter left (what the route table sees). */
function send(vm: Vm, ex: Exchange = {}): string[] {
  const s = vm.newStream({ properties: ex.props });
  const extra = Array.isArray(ex.headers) ? ex.headers : Object.entries(ex.headers ?? {});
  const base = ([[":method", "GET"], [":path", "/"], [":authority", "app"]] as [string, string][]).filter(([k]) => !extra.some(([e]) => e === k));
  assert.equal(s.requestHeaders([...base, ...extra], true), 0, "the filter never stops a request");
  const routed = s.requestHeaders().getAll(ROUTING);
  if (ex.status !== null) s.responseHeaders({ ":status": String(ex.status ?? 200) }, true);
  s.finish();
  return routed;
}

const subsetOf = (vm: Vm, ex: Exchange = {}) => send(vm, ex)[0];

/** FNV-1a 64 of the configuration as compact JSON (JSON.stringify's form for these configs), as the shared-data key names it. */
function configKey(config: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(config, "utf8")) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return `resilience.traffic-split.v1.${h.toString(16).padStart(16, "0")}`;
}

describe("traffic-split routing in emulated workers", () => {
  test("an empty configuration sends everything to stable and replaces a client's routing header", () => {
    const { host, vms } = start("");
    assert.deepEqual(send(vms[0]!), ["stable"]);
    assert.deepEqual(send(vms[1]!, { headers: [[ROUTING, "canary"], [ROUTING, "other"]] }), ["stable"]);
    // The only non-Ok answer: the configuration's state did not exist yet when the first worker started.
    assert.deepEqual(host.rejections.map((r) => `${r.call} ${r.resultName}`), ["proxy_get_shared_data NotFound"]);
  });

  test("30% by user id: the canary share is 30% +- 3% over 3,000 users, and a user keeps its subset on every worker", () => {
    const { vms } = start(CANARY);
    const first = new Map<string, string>();
    let canary = 0;
    for (let i = 0; i < 3000; i++) {
      const user = `user-${i}`;
      const s = subsetOf(vms[i % 2]!, { headers: { "x-user-id": user } });
      first.set(user, s);
      if (s === "canary") canary++;
    }
    assert.ok(canary >= 810 && canary <= 990, `canary share ${canary / 30}%`);
    for (let i = 0; i < 3000; i += 7) {
      const user = `user-${i}`;
      assert.equal(subsetOf(vms[(i + 1) % 2]!, { headers: { "x-user-id": user } }), first.get(user), user);
    }
  });

  test("without a sticky key the split is per request", () => {
    const { vms } = start({ subsets: [{ name: "stable" }, { name: "canary", weight: 50 }] });
    let canary = 0;
    for (let i = 0; i < 1000; i++) if (subsetOf(vms[0]!) === "canary") canary++;
    assert.ok(canary > 430 && canary < 570, `${canary} of 1000`);
  });

  test("a header rule forces the canary at weight 0, and a spoofed routing header has no effect", () => {
    const { vms } = start({
      subsets: [{ name: "stable" }, { name: "canary", weight: 0 }],
      rules: [
        { match: [{ header: "x-canary", exact: "always" }], subset: "canary" },
        { match: [{ cookie: "beta", present: true }, { query: "v", prefix: "2" }], subset: "canary" },
      ],
    });
    assert.deepEqual(send(vms[0]!, { headers: { "x-canary": "always" } }), ["canary"]);
    assert.deepEqual(send(vms[1]!, { headers: { "x-canary": "sometimes" } }), ["stable"]);
    assert.deepEqual(send(vms[0]!, { headers: { [ROUTING]: "canary" } }), ["stable"]);
    assert.deepEqual(send(vms[0]!, { headers: { cookie: "a=1; beta=yes", ":path": "/p?v=2.1" } }), ["canary"]);
    assert.deepEqual(send(vms[0]!, { headers: { cookie: "a=1", ":path": "/p?v=2.1" } }), ["stable"]);
  });

  test("allowClientHeader honours a client's routing header naming a known subset", () => {
    const { vms } = start({ subsets: [{ name: "stable" }, { name: "canary" }], allowClientHeader: true });
    assert.deepEqual(send(vms[0]!, { headers: { [ROUTING]: "canary" } }), ["canary"]);
    assert.deepEqual(send(vms[0]!, { headers: { [ROUTING]: "nonsense" } }), ["stable"]);
  });

  test("destinations match every spelling of a host: the configured names and the requests' are both normalised", () => {
    const { vms } = start({ subsets: [{ name: "stable" }, { name: "canary", weight: 100 }], destinations: ["Checkout.Example.com."] });
    for (const authority of ["checkout.example.com", "CHECKOUT.example.com:8080", "checkout.example.com."]) {
      assert.deepEqual(send(vms[0]!, { headers: { ":authority": authority } }), ["canary"], authority);
    }
    assert.deepEqual(send(vms[0]!, { headers: { ":authority": "inventory.example.com", [ROUTING]: "canary" } }), [], "another destination is not split");
  });

  test("each request re-selects the route once and costs no shared-data, metric or clock call", () => {
    const { vms } = start({ ...CANARY, rules: [{ match: [{ header: "x-canary", exact: "always" }], subset: "canary" }] });
    const s = vms[0]!.newStream();
    s.requestHeaders({ ":method": "GET", ":path": "/", ":authority": "app", "x-user-id": "u1" }, true);
    s.responseHeaders({ ":status": "200" }, true);
    s.finish();
    assert.equal(s.routeCacheClears, 1);
    const calls = s.hostCallCount;
    assert.equal(calls.proxy_get_header_map_value, 2, "x-canary for the rule, x-user-id for the point");
    assert.equal(calls.proxy_replace_header_map_value, 1);
    assert.equal(calls.proxy_call_foreign_function, undefined, "the replace re-selects the route: no clear_route_cache");
    assert.equal(calls.proxy_get_property, 3, "response.code, response.flags and the attempt count (the outcome's cause)");
    const none = ["proxy_get_shared_data", "proxy_set_shared_data", "proxy_increment_metric", "proxy_record_metric", "proxy_define_metric", "proxy_get_current_time_nanoseconds"];
    for (const name of none) {
      assert.equal(calls[name], undefined, name);
    }
  });

  test("a bad configuration is refused with one critical line naming the field", () => {
    const host = new Host({ vmId: "resilience" });
    assert.throws(
      () => start({ subsets: [{ name: "stable" }, { name: "canary", weight: 30 }], rules: [{ subset: "canery" }] }, 1, host),
      /on_configure returned false/,
    );
    const critical = host.logsAt(LogLevel.Critical);
    assert.equal(critical.length, 1);
    assert.match(critical[0]!.message, /field "rules\[0\]\.subset".*"canery"/);
  });
});

describe("traffic-split rollback across emulated workers", () => {
  const config = { ...CANARY, revision: "v2", rollback: { errorRate: 0.1, minRequests: 20, margin: 0.05, windowMs: 10000 } };

  /**
   * One request per 10 ms (100/s, distinct users) through `vm`, the canary answering every third of its requests with
   * 503, until the `nth` rollback is logged. Returns when the first error was answered, when the rollback was seen,
   * and how many requests went to the canary.
   */
  function trafficUntilRollback(host: Host, vm: Vm, nth = 1): { firstErrorMs: number; rollbackMs: number; canary: number } {
    let canary = 0;
    let firstErrorMs = -1;
    for (let i = 0; i < 3000; i++) {
      const s = vm.newStream();
      s.requestHeaders({ ":method": "GET", ":path": "/", ":authority": "app", "x-user-id": `u${nth}-${i}` }, true);
      let status = 200;
      if (s.requestHeaders().get(ROUTING) === "canary" && ++canary % 3 === 0) {
        status = 503;
        if (firstErrorMs < 0) firstErrorMs = host.clock.nowMs;
      }
      s.responseHeaders({ ":status": String(status) }, true);
      s.finish();
      host.advanceMs(10);
      if (host.logsAt(LogLevel.Critical).length >= nth) return { firstErrorMs, rollbackMs: host.clock.nowMs, canary };
    }
    assert.fail(`no rollback after 30 s of traffic (${canary} canary requests)`);
  }

  test("a failing canary is rolled back on both workers within 1.5 s of its first error, logged and counted once", () => {
    const { host, vms } = start(config);
    const [w0, w1] = [vms[0]!, vms[1]!];
    const { firstErrorMs, rollbackMs, canary } = trafficUntilRollback(host, w0);
    assert.ok(canary > 0);
    assert.ok(rollbackMs - firstErrorMs <= 1500, `rolled back ${rollbackMs - firstErrorMs} ms after the first error`);
    console.log(`# emulated rollback ${rollbackMs - firstErrorMs} ms after the first 503 (${canary} canary requests)`);
    const critical = host.logsAt(LogLevel.Critical);
    assert.equal(critical.length, 1);
    assert.match(critical[0]!.message, /rolled back subset "canary" \(revision "v2"\): error rate .* weight 30% -> 0% on every worker until a new configuration/);
    // Worker 1 served nothing so far; it adopts the rollback at its next sync (250 ms).
    host.advanceMs(250);
    for (let i = 0; i < 500; i++) assert.equal(subsetOf(w1, { headers: { "x-user-id": `other-${i}` } }), "stable");
    for (let i = 0; i < 500; i++) assert.equal(subsetOf(w0, { headers: { "x-user-id": `other-${i}` } }), "stable");
    host.advanceMs(250);
    assert.equal(host.counter(metric("canary", "rollbacks_total")), 1n);
    assert.equal(host.gauge(metric("canary", "weight_percent")), 0n);
    assert.equal(host.gauge(metric("canary", "rolled_back")), 1n);
    assert.equal(host.gauge(metric("stable", "weight_percent")), 100n);
    assert.equal(host.counter(metric("canary", "requests_total")), BigInt(canary));
    assert.equal(host.counter(metric("canary", "failures_total")), BigInt(Math.floor(canary / 3)));
    assert.equal(host.counter(metric("stable", "failures_total")), 0n);
  });

  test("the rollback stays without a cool-down; the same configuration in a new worker starts rolled back, a new one starts fresh", () => {
    const { host, vms } = start(config);
    trafficUntilRollback(host, vms[0]!);
    for (let minute = 0; minute < 60; minute++) {
      host.advanceMs(60_000);
      assert.equal(subsetOf(vms[minute % 2]!, { headers: { "x-user-id": `late-${minute}` } }), "stable");
    }
    assert.equal(host.logsAt(LogLevel.Critical).length, 1);
    // A worker (re)started with the same configuration bytes routes by the rollback before its first tick.
    const [again] = start(config, 1, host).vms;
    for (let i = 0; i < 200; i++) assert.equal(subsetOf(again!, { headers: { "x-user-id": `u-${i}` } }), "stable");
    // A new configuration (a new canary revision) gets its own shared state.
    const [fresh] = start({ ...config, revision: "v3" }, 1, host).vms;
    let canary = 0;
    for (let i = 0; i < 200; i++) if (subsetOf(fresh!, { headers: { "x-user-id": `u-${i}` } }) === "canary") canary++;
    assert.ok(canary > 30, `${canary} of 200 on the new canary`);
    assert.ok(host.sharedData(configKey(JSON.stringify(config))), "the old configuration's key");
    assert.equal(host.sharedData(configKey(JSON.stringify({ ...config, revision: "v3" })))!.value.length, 336);
  });

  test("with a cool-down the canary comes back at its configured weight, and can be rolled back again", () => {
    const { host, vms } = start({ ...config, rollback: { ...config.rollback, cooldownMs: 20000 } });
    const user = canaryUser("v2", 30);
    const first = trafficUntilRollback(host, vms[0]!);
    host.advanceMs(19_000 - (host.clock.nowMs - first.rollbackMs));
    assert.equal(subsetOf(vms[1]!, { headers: { "x-user-id": user } }), "stable");
    host.advanceMs(1_500);
    const warn = host.logsAt(LogLevel.Warn).filter((l) => l.level === LogLevel.Warn);
    assert.equal(warn.length, 1);
    assert.match(warn[0]!.message, /cool-down over, subset "canary" \(revision "v2"\) restored to weight 30%/);
    assert.equal(subsetOf(vms[1]!, { headers: { "x-user-id": user } }), "canary");
    assert.equal(host.gauge(metric("canary", "rolled_back")), 0n);
    assert.equal(host.gauge(metric("canary", "weight_percent")), 30n);
    trafficUntilRollback(host, vms[0]!, 2);
    assert.equal(host.counter(metric("canary", "rollbacks_total")), 2n);
  });

  test("resets after a 200 count as failures; a client that went away does not", () => {
    const { host, vms } = start({ subsets: [{ name: "stable" }, { name: "canary", weight: 100 }], rollback: { minRequests: 1000 } });
    send(vms[0]!, { status: 200, props: { "response.flags": 0x10n } });
    send(vms[0]!, { status: null });
    send(vms[0]!, { status: 502 });
    host.advanceMs(250);
    assert.equal(host.counter(metric("canary", "requests_total")), 3n);
    assert.equal(host.counter(metric("canary", "failures_total")), 2n);
  });

  test("the ramp steps the canary up while healthy, holds while it fails, and stops at its maximum", () => {
    const { host, vms } = start({
      subsets: [{ name: "stable" }, { name: "canary", weight: 10, ramp: { stepPercent: 10, intervalMs: 5000, maxPercent: 30 } }],
      stickyBy: [{ header: "x-user-id" }],
      rollback: { minRequests: 1000, errorRate: 0.2, windowMs: 2000 },
    });
    const user = canaryUser("", 10);
    assert.equal(host.gauge(metric("canary", "weight_percent")), 10n);
    host.advanceMs(5000);
    assert.equal(host.gauge(metric("canary", "weight_percent")), 20n);
    assert.equal(host.gauge(metric("stable", "weight_percent")), 80n);
    assert.match(host.logsAt(LogLevel.Info).at(-1)!.message, /ramp step for subset "canary": weight 10% -> 20%/);
    // Failing just before the next step is due (below minRequests, so no rollback): the step waits.
    host.advanceMs(4500);
    for (let i = 0; i < 10; i++) assert.deepEqual(send(vms[1]!, { headers: { "x-user-id": user }, status: 500 }), ["canary"]);
    host.advanceMs(1500);
    assert.equal(host.gauge(metric("canary", "weight_percent")), 20n, "held while its error rate is above errorRate");
    host.advanceMs(1500); // the failures have left the 2 s window
    assert.equal(host.gauge(metric("canary", "weight_percent")), 30n);
    host.advanceMs(60_000);
    assert.equal(host.gauge(metric("canary", "weight_percent")), 30n);
    assert.equal(host.logsAt(LogLevel.Critical).length, 0);
  });
});

/** A user id the split puts on the canary at `percent`% under `revision` (the hash salt), found in a scratch host. */
function canaryUser(revision: string, percent: number): string {
  const { vms } = start({ revision, subsets: [{ name: "stable" }, { name: "canary", weight: percent }], stickyBy: [{ header: "x-user-id" }] }, 1);
  for (let i = 0; i < 10_000; i++) {
    if (subsetOf(vms[0]!, { headers: { "x-user-id": `c-${i}` } }) === "canary") return `c-${i}`;
  }
  throw new Error(`no canary user at ${percent}%`);
}
