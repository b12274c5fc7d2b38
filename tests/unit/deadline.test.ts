// deadline.wasm (release and debug builds) in the host emulator, with its fake clock: budget parsing from every source,
// the time-left arithmetic against request.time, defaults, clamps, local replies, and the cross-hop slot table shared
// by two workers. Needs `npm run build` first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { Host, LogLevel, type RootContext, type Stream, type Vm } from "../emulator/index.js";

const VM_ID = "resilience";
const TABLE_PREFIX = "resilience.deadline.default.";
const H = "x-resilience-deadline-ms";
const GRPC = { "content-type": "application/grpc" };

/** The tag-encoded stat name the filter defines: `reporter` first, then `budget_source` when given. */
function stat(metric: string, reporter = "inbound", source?: string): string {
  return `reporter=.=${reporter};.;` + (source ? `budget_source=.=${source};.;` : "") + `resilience_deadline_${metric}`;
}

/**
 * Lets a housekeeping tick pass (one second): the per-request series (budgets, lookups, records, occupancy) are summed
 * in each worker and handed to Envoy then.
 */
function flushed(host: Host): Host {
  assert.ok(host.advanceMs(1000) > 0, "housekeeping ticks fired");
  return host;
}

const tallied = (host: Host, name: string): bigint => flushed(host).counter(name);

for (const file of ["deadline.wasm", "deadline.debug.wasm"]) {
  const wasm = fileURLToPath(new URL(`../../build/${file}`, import.meta.url));

  describe(`deadline (${file}) in emulated workers`, () => {
    const start = (config: object | string, workers = 1, logLevel = LogLevel.Info) => {
      if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`npm run build\` first`);
      const host = new Host({ vmId: VM_ID, logLevel });
      const pluginConfig = typeof config === "string" ? config : JSON.stringify(config);
      const vms = host.startVms(wasm, workers, { pluginConfig, pluginName: "deadline", rootId: "deadline" });
      return { host, vms, vm: vms[0]! };
    };

    /** A stream created now (request.time), whose request headers reach the filter `waitMs` later. */
    const send = (host: Host, vm: Vm, headers: Record<string, string>, opts: { waitMs?: number; root?: RootContext } = {}) => {
      const s = vm.newStream({ root: opts.root });
      host.clock.advanceMs(opts.waitMs ?? 0);
      s.requestHeaders({ ":authority": "b.svc", ":path": "/", ":method": "GET", ...headers }, true);
      return s;
    };
    const sent = (s: Stream, name: string) => s.requestHeaders().get(name);
    /** The upstream answers, then the stream completes (on_log) with Envoy's response flags. */
    const complete = (s: Stream, flags = 0n) => {
      if (!s.localReply) s.responseHeaders({ ":status": "200" }, true);
      s.setProperty("response.flags", flags);
      s.finish();
    };

    test("the header's budget minus the time since request.time and the margin goes to the router and the next hop", () => {
      const { host, vm } = start({ incoming: "trust", marginMs: 5 });
      const s = send(host, vm, { [H]: "300" }, { waitMs: 40 });
      assert.equal(s.requestForwarded, true);
      assert.equal(sent(s, H), "255");
      assert.equal(sent(s, "x-envoy-upstream-rq-timeout-ms"), "255");
      assert.equal(sent(s, "grpc-timeout"), undefined, "plain HTTP gets no grpc-timeout");
      assert.equal(tallied(host, stat("budgets_total", "inbound", "header")), 1n);
      assert.equal(tallied(host, stat("budgets_total", "inbound", "none")), 0n);
    });

    test("grpc-timeout in every unit becomes whole milliseconds, rounded down, and is rewritten for the server", () => {
      const { host, vm } = start({ incoming: "trust", maxMs: 86_400_000 });
      const cases: Array<[string, number]> = [
        ["1H", 3_600_000], ["2M", 120_000], ["3S", 3_000], ["250m", 250], ["250000u", 250], ["1999u", 1],
        ["25000000n", 25], ["00000007m", 7], ["99999999S", 86_400_000],
      ];
      for (const [value, ms] of cases) {
        const s = send(host, vm, { ...GRPC, "grpc-timeout": value });
        assert.equal(sent(s, H), String(ms), `grpc-timeout ${value}`);
        assert.equal(sent(s, "grpc-timeout"), `${ms}m`, `grpc-timeout ${value}`);
      }
      assert.equal(tallied(host, stat("budgets_total", "inbound", "grpc-timeout")), BigInt(cases.length));
      assert.equal(host.counter(stat("clamps_total")), 1n, "99999999S is beyond maxMs");
    });

    test("a grpc-timeout below one millisecond is already spent: DEADLINE_EXCEEDED at once", () => {
      const { host, vm } = start({ incoming: "trust" });
      const s = send(host, vm, { ...GRPC, "grpc-timeout": "999u" });
      assert.equal(s.localReply?.grpcStatus, 4);
      assert.equal(s.requestForwarded, false);
    });

    test("malformed grpc-timeout values are ignored, counted and logged at debug, and the default applies", () => {
      const { host, vm } = start({ incoming: "trust", defaultMs: 700 }, 1, LogLevel.Debug);
      const bad = ["", "m", "5", "123456789m", "250000000n", "5x", "-5m", "5 m", "1.5S", "+5S", "５m", "5h", "5mm", "0x10m"];
      for (const value of bad) {
        const s = send(host, vm, { ...GRPC, "grpc-timeout": value });
        assert.equal(s.requestForwarded, true, `grpc-timeout ${JSON.stringify(value)}`);
        assert.equal(sent(s, H), "700", `grpc-timeout ${JSON.stringify(value)}`);
        assert.equal(sent(s, "grpc-timeout"), "700m");
      }
      assert.equal(host.counter(stat("malformed_total", "inbound", "grpc-timeout")), BigInt(bad.length));
      assert.equal(tallied(host, stat("budgets_total", "inbound", "default")), BigInt(bad.length));
      const lines = host.logsAt(LogLevel.Debug).filter((l) => l.message.includes("ignoring malformed grpc-timeout"));
      assert.equal(lines.length, bad.length);
      assert.match(lines[3]!.message, /"123456789m"/, "more than 8 digits");
      assert.deepEqual(host.logsAt(LogLevel.Warn), []);
    });

    test("malformed millisecond headers are ignored the same way", () => {
      const { host, vm } = start({ incoming: "trust", defaultMs: 700 });
      for (const value of ["", "abc", "-1", "1.5", "12 ", "1e3", "9".repeat(33)]) {
        assert.equal(sent(send(host, vm, { [H]: value }), H), "700", `header ${JSON.stringify(value)}`);
      }
      assert.equal(host.counter(stat("malformed_total", "inbound", "header")), 7n);
      assert.equal(sent(send(host, vm, { [H]: "9".repeat(32) }), H), "15000", "32 digits is a (huge) number, clamped");
    });

    test("x-envoy-expected-rq-timeout-ms is a budget when listed and the earlier sources are absent", () => {
      const { host, vm } = start({ incoming: "trust" });
      assert.equal(sent(send(host, vm, { "x-envoy-expected-rq-timeout-ms": "420" }), H), "420");
      assert.equal(sent(send(host, vm, { "x-envoy-expected-rq-timeout-ms": "420", [H]: "90" }), H), "90");
      assert.equal(tallied(host, stat("budgets_total", "inbound", "envoy-expected")), 1n);
      const only = start({ incoming: "trust", sources: ["header"] });
      assert.equal(sent(send(only.host, only.vm, { "x-envoy-expected-rq-timeout-ms": "420" }), H), undefined, "not listed: no budget");
    });

    test("the smallest budget of all present sources wins, and a malformed one does not stop the others being read", () => {
      // Was "the first source in the configured order wins": a caller could hide a short grpc-timeout behind a long header.
      const { host, vm } = start({ incoming: "trust", sources: ["grpc-timeout", "header"] });
      assert.equal(sent(send(host, vm, { [H]: "300", "grpc-timeout": "2S" }), H), "300");
      assert.equal(sent(send(host, vm, { [H]: "300", "grpc-timeout": "2 S" }), H), "300");
      assert.equal(sent(send(host, vm, { [H]: "15000", "grpc-timeout": "100m" }), H), "100");
      assert.equal(tallied(host, stat("budgets_total", "inbound", "header")), 2n);
      assert.equal(tallied(host, stat("budgets_total", "inbound", "grpc-timeout")), 1n);
      const all = start({ incoming: "shorten" });
      const cases: Array<[Record<string, string>, string, string]> = [
        [{ [H]: "15000", "grpc-timeout": "100m" }, "100", "grpc-timeout"],
        [{ [H]: "bad", "grpc-timeout": "250m", "x-envoy-expected-rq-timeout-ms": "90" }, "90", "envoy-expected"],
        [{ [H]: "70", "grpc-timeout": "5x", "x-envoy-expected-rq-timeout-ms": "900" }, "70", "header"],
        [{ [H]: "", "grpc-timeout": "", "x-envoy-expected-rq-timeout-ms": "400" }, "400", "envoy-expected"],
      ];
      for (const [headers, left] of cases) assert.equal(sent(send(all.host, all.vm, headers), H), left, JSON.stringify(headers));
      assert.equal(all.host.counter(stat("malformed_total", "inbound", "header")), 2n);
      assert.equal(all.host.counter(stat("malformed_total", "inbound", "grpc-timeout")), 2n);
      assert.equal(tallied(all.host, stat("budgets_total", "inbound", "envoy-expected")), 2n);
    });

    describe("a caller can only shorten the operator's bound", () => {
      const UPSTREAM = "x-envoy-upstream-rq-timeout-ms";
      const PER_TRY = "x-envoy-upstream-rq-per-try-timeout-ms";
      const BUDGET = "resilience_caller_budget_ms";
      const callerBudget = (s: Stream) => {
        const v = s.filterState.get(BUDGET);
        return v === undefined ? undefined : new TextDecoder().decode(v);
      };

      test("without a configured default the route's timeout stays the bound: only the per-try header, which Envoy never lets exceed it", () => {
        const { host, vm } = start("{}");
        const long = send(host, vm, { [H]: "15000" });
        assert.equal(sent(long, PER_TRY), "15000");
        assert.equal(sent(long, UPSTREAM), undefined, "never replaces the route's timeout");
        assert.equal(sent(long, H), "15000");
        assert.equal(callerBudget(long), "15000", "the caller's budget bounds the request (the classifier compares it with the duration)");
        const short = send(host, vm, { [H]: "200" });
        assert.equal(sent(short, PER_TRY), "200");
        assert.equal(sent(short, UPSTREAM), undefined);
      });

      test("an internal caller's own whole-request timeout is removed when the per-try header carries its budget", () => {
        const { host, vm } = start("{}");
        const s = send(host, vm, { [H]: "500", [UPSTREAM]: "60000" });
        assert.equal(sent(s, UPSTREAM), undefined);
        assert.equal(sent(s, PER_TRY), "500");
      });

      test("with a default the caller's shorter budget replaces the route's timeout, a longer one gets the default", () => {
        const { host, vm } = start({ defaultMs: 1000, marginMs: 5 });
        const short = send(host, vm, { [H]: "200" });
        assert.equal(sent(short, UPSTREAM), "195");
        assert.equal(sent(short, PER_TRY), undefined);
        assert.equal(callerBudget(short), "195");
        const long = send(host, vm, { [H]: "15000" });
        assert.equal(sent(long, UPSTREAM), "995");
        assert.equal(sent(long, H), "995");
        assert.equal(callerBudget(long), undefined, "the operator's bound applies");
        const none = send(host, vm, {});
        assert.equal(sent(none, UPSTREAM), "995");
        assert.equal(callerBudget(none), undefined);
        assert.equal(host.counter(stat("clamps_total")), 1n);
      });

      test("a rule's budget is the bound for requests it matches", () => {
        const { host, vm } = start({ defaultMs: 1000, defaults: [{ prefix: "/reports/", ms: 5000 }] });
        const s = send(host, vm, { ":path": "/reports/q3", [H]: "3000" });
        assert.equal(sent(s, UPSTREAM), "3000");
        assert.equal(callerBudget(s), "3000");
        assert.equal(sent(send(host, vm, { ":path": "/reports/q3", [H]: "9000" }), UPSTREAM), "5000");
        assert.equal(sent(send(host, vm, { ":path": "/", [H]: "3000" }), UPSTREAM), "1000");
      });

      test("under trust the incoming budget is the operator's: it may exceed the default (up to maxMs) and replaces the route's timeout", () => {
        const { host, vm } = start({ incoming: "trust", defaultMs: 1000, maxMs: 5000 });
        const long = send(host, vm, { [H]: "3000" });
        assert.equal(sent(long, UPSTREAM), "3000");
        assert.equal(callerBudget(long), undefined, "at or above the operator's default: the operator's bound");
        const short = send(host, vm, { [H]: "300" });
        assert.equal(sent(short, UPSTREAM), "300");
        assert.equal(callerBudget(short), "300");
        const noDefault = start({ incoming: "trust" });
        assert.equal(sent(send(noDefault.host, noDefault.vm, { [H]: "15000" }), UPSTREAM), "15000");
      });

      test("in dry run nothing bounds the upstream, so no caller budget is published", () => {
        const { host, vm } = start({ enforce: false, defaultMs: 1000 });
        const s = send(host, vm, { [H]: "100" });
        assert.equal(sent(s, UPSTREAM), undefined);
        assert.equal(sent(s, PER_TRY), undefined);
        assert.equal(callerBudget(s), undefined);
      });
    });

    test("an ask above maxMs is clamped to maxMs and counted", () => {
      const { host, vm } = start({ incoming: "trust", maxMs: 2000 });
      const s = send(host, vm, { [H]: "3600000" });
      assert.equal(sent(s, H), "2000");
      assert.equal(sent(s, "x-envoy-upstream-rq-timeout-ms"), "2000");
      assert.equal(host.counter(stat("clamps_total")), 1n);
    });

    test("under shorten an incoming budget may only shorten the default", () => {
      const { host, vm } = start({ incoming: "shorten", defaultMs: 1000 });
      assert.equal(sent(send(host, vm, { [H]: "300" }), H), "300");
      assert.equal(sent(send(host, vm, { [H]: "5000" }), H), "1000");
      assert.equal(host.counter(stat("clamps_total")), 1n);
      const noDefault = start({ incoming: "shorten", maxMs: 4000 });
      assert.equal(sent(send(noDefault.host, noDefault.vm, { [H]: "5000" }), H), "4000", "without a default only maxMs caps");
    });

    test("under ignore incoming headers give nothing, and the project header is removed when no default applies", () => {
      const { host, vm } = start({ incoming: "ignore" });
      const s = send(host, vm, { [H]: "300", "grpc-timeout": "1S" });
      assert.equal(sent(s, H), undefined);
      assert.equal(sent(s, "grpc-timeout"), "1S", "the client's own grpc-timeout is left alone");
      assert.equal(sent(s, "x-envoy-upstream-rq-timeout-ms"), undefined);
      assert.equal(tallied(host, stat("budgets_total", "inbound", "none")), 1n);
      const withDefault = start({ incoming: "ignore", defaultMs: 800 });
      assert.equal(sent(send(withDefault.host, withDefault.vm, { [H]: "300" }), H), "800");
    });

    test("defaults match destination and path prefix in order, else defaultMs", () => {
      const { host, vm } = start({
        defaultMs: 1000,
        defaults: [
          { destination: "b.svc", prefix: "/slow/", ms: 5000 },
          { destination: "b.svc", ms: 2000 },
          { prefix: "/api/", ms: 300 },
        ],
      });
      const at = (authority: string, path: string) => sent(send(host, vm, { ":authority": authority, ":path": path }), H);
      assert.equal(at("b.svc:8080", "/slow/report"), "5000");
      assert.equal(at("b.svc", "/api/x"), "2000");
      assert.equal(at("c.svc", "/api/x"), "300");
      assert.equal(at("c.svc", "/other"), "1000");
      assert.equal(tallied(host, stat("budgets_total", "inbound", "default")), 4n);
    });

    test("without any budget the request passes untouched", () => {
      const { host, vm } = start("{}");
      const s = send(host, vm, {});
      assert.equal(s.requestForwarded, true);
      for (const h of [H, "x-envoy-upstream-rq-timeout-ms", "grpc-timeout"]) assert.equal(sent(s, h), undefined);
      assert.equal(tallied(host, stat("budgets_total", "inbound", "none")), 1n);
      assert.deepEqual(new Set(host.rejections.map((r) => `${r.call} ${r.resultName}`)), new Set(["proxy_get_header_map_value NotFound"]));
    });

    test("less than minMs left is answered 504 at once and never reaches the router", () => {
      const { host, vm } = start({ incoming: "trust", minMs: 20, marginMs: 5 });
      const s = send(host, vm, { [H]: "24" });
      assert.equal(s.requestForwarded, false);
      assert.equal(s.localReply?.status, 504);
      assert.equal(s.localReply?.details, "deadline_exceeded");
      assert.equal(s.localReply?.grpcStatus, null);
      assert.equal(host.counter(stat("rejections_total")), 1n);
      assert.equal(host.counter(stat("expired_total")), 1n);
      assert.equal(send(host, vm, { [H]: "25" }).requestForwarded, true, "25 - 5 = 20 is enough");
    });

    test("a spent gRPC deadline is answered with grpc-status DEADLINE_EXCEEDED", () => {
      const { host, vm } = start({ incoming: "trust", minMs: 5 });
      const s = send(host, vm, { ...GRPC, "grpc-timeout": "4m" });
      assert.equal(s.localReply?.grpcStatus, 4);
      assert.equal(s.localReply?.bodyText, "deadline exceeded");
    });

    test("time spent before the filter runs counts: a request that waited past its budget is spent", () => {
      const { host, vm } = start({ incoming: "trust" });
      assert.equal(sent(send(host, vm, { [H]: "100" }, { waitMs: 99 }), H), "1");
      assert.equal(send(host, vm, { [H]: "100" }, { waitMs: 100 }).localReply?.status, 504);
      assert.equal(send(host, vm, { [H]: "100" }, { waitMs: 150 }).localReply?.status, 504);
    });

    test("in dry run a spent budget is counted and propagated as 0, with no router timeout", () => {
      const { host, vm } = start({ incoming: "trust", enforce: false });
      const s = send(host, vm, { ...GRPC, [H]: "10" }, { waitMs: 30 });
      assert.equal(s.requestForwarded, true);
      assert.equal(sent(s, H), "0");
      assert.equal(sent(s, "grpc-timeout"), "0m");
      assert.equal(sent(s, "x-envoy-upstream-rq-timeout-ms"), undefined);
      assert.equal(host.counter(stat("expired_total")), 1n);
      assert.equal(host.counter(stat("rejections_total")), 0n);
      assert.equal(sent(send(host, vm, { [H]: "300" }), "x-envoy-upstream-rq-timeout-ms"), undefined);
    });

    describe("across the application (inbound records, outbound looks up)", () => {
      const INBOUND = { reporter: "inbound", incoming: "trust", marginMs: 5, defaultMs: 1000, crossHop: { mode: "record", slots: 16, graceMs: 1000 } };
      const OUTBOUND = { reporter: "outbound", incoming: "trust", marginMs: 5, defaultMs: 1000, crossHop: { mode: "lookup", slots: 16, graceMs: 1000 } };
      /** Two workers, each with an inbound and an outbound plugin (one VM per worker, two root contexts). */
      const sidecar = (inbound: object = INBOUND, outbound: object = OUTBOUND) => {
        const { host, vms } = start(inbound, 2);
        const out = vms.map((vm) => vm.startRoot({ pluginConfig: JSON.stringify(outbound), pluginName: "deadline-outbound", rootId: "deadline" }));
        assert.ok(out.every((r) => r.configureResult));
        return { host, vms, out };
      };
      const keys = (host: Host) => host.sharedDataStore.keys(VM_ID).filter((k) => k.startsWith(TABLE_PREFIX));

      test("the outbound call finds the inbound deadline by x-request-id in another worker, so the app's time counts", () => {
        const { host, vms, out } = sidecar();
        const inbound = send(host, vms[0]!, { [H]: "300", "x-request-id": "req-1" });
        assert.equal(sent(inbound, H), "295");
        host.clock.advanceMs(200); // app A works
        const call = send(host, vms[1]!, { "x-request-id": "req-1" }, { root: out[1] });
        assert.equal(sent(call, H), "95"); // 300 - 200 - 5
        assert.equal(sent(call, "x-envoy-upstream-rq-timeout-ms"), "95");
        assert.equal(tallied(host, stat("crosshop_hits_total", "outbound")), 1n);
        assert.equal(tallied(host, stat("budgets_total", "outbound", "request-id")), 1n);
        const other = send(host, vms[1]!, { "x-request-id": "req-2" }, { root: out[1] });
        assert.equal(sent(other, H), "995", "an unknown id falls back to the default");
        assert.equal(tallied(host, stat("crosshop_misses_total", "outbound")), 1n);
      });

      test("a spent inbound deadline makes the app's outbound call fail at once", () => {
        const { host, vms, out } = sidecar();
        send(host, vms[0]!, { [H]: "150", "x-request-id": "req-1" });
        host.clock.advanceMs(200);
        const call = send(host, vms[1]!, { "x-request-id": "req-1" }, { root: out[1] });
        assert.equal(call.localReply?.status, 504);
        assert.equal(host.counter(stat("rejections_total", "outbound")), 1n);
      });

      test("the earlier of a forwarded header and the table's deadline wins", () => {
        const { host, vms, out } = sidecar();
        send(host, vms[0]!, { [H]: "300", "x-request-id": "req-1" });
        host.clock.advanceMs(100);
        // The app forwarded the header it received verbatim (295): the table knows better (300 - 100 - 5).
        assert.equal(sent(send(host, vms[1]!, { [H]: "295", "x-request-id": "req-1" }, { root: out[1] }), H), "195");
        // A deadline-aware app asked for less: that stands.
        assert.equal(sent(send(host, vms[1]!, { [H]: "50", "x-request-id": "req-1" }, { root: out[1] }), H), "45");
      });

      test("an answered request frees its slot, so later calls with its id fall back to the default", () => {
        const { host, vms, out } = sidecar();
        const inbound = send(host, vms[0]!, { [H]: "300", "x-request-id": "req-1" });
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 1n);
        complete(inbound);
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 0n);
        assert.equal(sent(send(host, vms[1]!, { "x-request-id": "req-1" }, { root: out[1] }), H), "995");
      });

      test("a request cut short by its deadline stays so late calls are refused, until deadline plus grace", () => {
        const { host, vms, out } = sidecar();
        const inbound = send(host, vms[0]!, { [H]: "100", "x-request-id": "req-1" });
        host.clock.advanceMs(95);
        complete(inbound, 0x4n); // UT: the router's timeout fired; app A is still working
        host.clock.advanceMs(100);
        assert.equal(send(host, vms[1]!, { "x-request-id": "req-1" }, { root: out[1] }).localReply?.status, 504);
        host.clock.advanceMs(1000); // deadline (t=100) + grace (1000) is now past
        assert.equal(sent(send(host, vms[1]!, { "x-request-id": "req-1" }, { root: out[1] }), H), "995", "stale: a miss");
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 1n, "a stale slot occupies room until reused");
      });

      test("the table keeps slots/4 keys of 64 bytes however many ids pass, and refuses new ids when a key is full of live ones", () => {
        // Was "evicting the earliest deadline when full": an entry is no longer pushed out by a newer one (see the next test).
        const { host, vms, out } = sidecar();
        // 2,000 requests in flight at once on 16 slots: the first four of each key are recorded, the rest refused.
        for (let i = 0; i < 2000; i++) send(host, vms[i % 2]!, { [H]: String(1000 + i), "x-request-id": `id-${i}` });
        assert.deepEqual(keys(host).sort(), [0, 1, 2, 3].map((k) => TABLE_PREFIX + k));
        assert.deepEqual(host.sharedDataStore.keys(VM_ID).length, 4, "no other shared-data key");
        for (const k of keys(host)) assert.equal(host.sharedData(k)!.value.length, 64);
        assert.equal(host.counter(stat("crosshop_full_total")), 2000n - 16n);
        // The first id is still found, whatever came after it.
        assert.equal(sent(send(host, vms[0]!, { "x-request-id": "id-0" }, { root: out[0] }), H), String(1000 - 5));
        assert.equal(host.counter(stat("crosshop_records_total")), 0n, "not handed to Envoy before the tick");
        assert.equal(tallied(host, stat("crosshop_records_total")), 16n);
        assert.equal(host.gauge(stat("crosshop_slots_used")), 16n);
      });

      test("a caller filling the table with long budgets cannot push out another request's entry", () => {
        const { host, vms, out } = sidecar();
        send(host, vms[0]!, { [H]: "300", "x-request-id": "victim" });
        for (let i = 0; i < 500; i++) send(host, vms[1]!, { [H]: "10000", "x-request-id": `attacker-${i}` });
        host.clock.advanceMs(100);
        assert.equal(sent(send(host, vms[1]!, { "x-request-id": "victim" }, { root: out[1] }), H), "195", "300 - 100 - 5");
        assert.ok(host.counter(stat("crosshop_full_total")) > 400n);
      });

      test("stale entries are reused before anything is refused", () => {
        const { host, vms } = sidecar();
        for (let i = 0; i < 200; i++) send(host, vms[0]!, { [H]: "100", "x-request-id": `old-${i}` });
        assert.equal(host.counter(stat("crosshop_full_total")), 200n - 16n);
        assert.equal(tallied(host, stat("crosshop_records_total")), 16n); // one second passes: deadline + grace not yet
        host.clock.advanceMs(200); // deadline (100) + grace (1000) past: every entry stale
        for (let i = 0; i < 200; i++) send(host, vms[1]!, { [H]: "100", "x-request-id": `new-${i}` });
        assert.equal(host.counter(stat("crosshop_full_total")), 2n * (200n - 16n), "16 stale slots taken, then full again");
        assert.equal(tallied(host, stat("crosshop_records_total")), 32n);
        assert.equal(host.gauge(stat("crosshop_slots_used")), 16n);
      });

      test("a second request with the same id keeps the earlier deadline and does not release the first one's slot", () => {
        const { host, vms, out } = sidecar();
        const first = send(host, vms[0]!, { [H]: "3000", "x-request-id": "dup" });
        const second = send(host, vms[1]!, { [H]: "9000", "x-request-id": "dup" });
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 1n, "one slot, two holders");
        assert.equal(sent(send(host, vms[0]!, { "x-request-id": "dup" }, { root: out[0] }), H), String(3000 - 1000 - 5));
        complete(second); // the longer one finishes first: the first still holds the slot
        assert.equal(sent(send(host, vms[1]!, { "x-request-id": "dup" }, { root: out[1] }), H), String(3000 - 1000 - 5));
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 1n);
        complete(first);
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 0n, "the last holder frees it");
        assert.equal(sent(send(host, vms[1]!, { "x-request-id": "dup" }, { root: out[1] }), H), "995", "gone: the default");
      });

      test("a shorter duplicate shortens the entry, and either may finish first", () => {
        const { host, vms, out } = sidecar();
        const first = send(host, vms[0]!, { [H]: "5000", "x-request-id": "dup" });
        const second = send(host, vms[1]!, { [H]: "300", "x-request-id": "dup" });
        assert.equal(sent(send(host, vms[0]!, { "x-request-id": "dup" }, { root: out[0] }), H), "295");
        complete(first);
        assert.equal(sent(send(host, vms[0]!, { "x-request-id": "dup" }, { root: out[0] }), H), "295", "still held by the second");
        complete(second);
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 0n);
      });

      test("a request finishing after its entry went stale and was re-recorded under its id does not release the new entry", () => {
        const { host, vms, out } = sidecar({ ...INBOUND, enforce: false });
        const old = send(host, vms[0]!, { [H]: "100", "x-request-id": "same" });
        host.clock.advanceMs(1200); // stale
        send(host, vms[1]!, { [H]: "3000", "x-request-id": "same" });
        complete(old); // the dry run let it run long
        assert.equal(sent(send(host, vms[0]!, { "x-request-id": "same" }, { root: out[0] }), H), "2995");
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 1n);
      });

      test("a caller's reset (DR) or disconnect (DC) keeps the entry: the app's outbound call still gets the recorded deadline", () => {
        for (const flags of [0x10000000n, 0x4000n, 0x4n]) {
          const { host, vms, out } = sidecar();
          const inbound = send(host, vms[0]!, { [H]: "800", "x-request-id": "req-1" });
          host.clock.advanceMs(50);
          complete(inbound, flags);
          host.clock.advanceMs(150);
          assert.equal(sent(send(host, vms[1]!, { "x-request-id": "req-1" }, { root: out[1] }), H), "595", `flags ${flags}`);
          assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 1n);
        }
      });

      test("a table entry from a caller's budget publishes the caller budget on the outbound call; one from the default does not", () => {
        const shorten = { ...OUTBOUND, incoming: "shorten" };
        const { host, vms, out } = sidecar({ ...INBOUND, incoming: "shorten" }, shorten);
        send(host, vms[0]!, { [H]: "300", "x-request-id": "caller" });
        send(host, vms[0]!, { "x-request-id": "operator" });
        const a = send(host, vms[1]!, { "x-request-id": "caller" }, { root: out[1] });
        assert.equal(sent(a, "x-envoy-upstream-rq-timeout-ms"), "295");
        assert.equal(new TextDecoder().decode(a.filterState.get("resilience_caller_budget_ms")), "295");
        const b = send(host, vms[1]!, { "x-request-id": "operator" }, { root: out[1] });
        assert.equal(sent(b, "x-envoy-upstream-rq-timeout-ms"), "995");
        assert.equal(b.filterState.get("resilience_caller_budget_ms"), undefined);
      });

      test("ten thousand answered requests leave the table empty and no larger", () => {
        const { host, vms } = sidecar();
        for (let i = 0; i < 10_000; i++) complete(send(host, vms[i % 2]!, { [H]: "300", "x-request-id": `id-${i}` }));
        assert.equal(keys(host).length, 4);
        assert.equal(flushed(host).gauge(stat("crosshop_slots_used")), 0n);
        assert.equal(host.counter(stat("crosshop_records_total")), 10_000n);
        assert.equal(host.counter(stat("crosshop_full_total")), 0n);
      });

      test("record and lookup cost a bounded number of host calls", () => {
        const { host, vms, out } = sidecar();
        complete(send(host, vms[0]!, { [H]: "300", "x-request-id": "warm" }));
        const inbound = send(host, vms[0]!, { [H]: "300", "x-request-id": "req-1" });
        const call = send(host, vms[0]!, { "x-request-id": "req-1" }, { root: out[0] });
        complete(inbound);
        const total = (s: Stream) => Object.values(s.hostCallCount).reduce((a, b) => a + b, 0);
        assert.equal(inbound.hostCallCount.proxy_get_shared_data, 2, "record + release");
        assert.equal(inbound.hostCallCount.proxy_set_shared_data, 2);
        assert.equal(inbound.hostCallCount.proxy_define_metric, undefined);
        assert.equal(inbound.hostCallCount.proxy_get_current_time_nanoseconds, 1, "the clock once, on request headers");
        assert.equal(inbound.hostCallCount.proxy_increment_metric, undefined, "per-request series wait for the tick");
        assert.equal(call.hostCallCount.proxy_increment_metric, undefined);
        assert.equal(call.hostCallCount.proxy_get_shared_data, 1);
        assert.equal(call.hostCallCount.proxy_set_shared_data, undefined);
        // 15: every source is read (the smallest wins) and the caller's budget is published for the outcome classifier.
        assert.ok(total(inbound) <= 15, `inbound: ${JSON.stringify(inbound.hostCallCount)}`);
        assert.ok(total(call) <= 11, `outbound: ${JSON.stringify(call.hostCallCount)}`);
      });
    });

    test("bad configurations are refused with one critical line naming the field", () => {
      const bad: Array<[object, RegExp]> = [
        [{ maxMs: 1000, minMs: 2000 }, /field "minMs": 2000 is above maxMs 1000/],
        [{ defaultMs: 20000 }, /field "defaultMs": 20000 is above maxMs 15000/],
        [{ header: "X Deadline" }, /field "header": expected a header name/],
        [{ sources: ["header", "header"] }, /field "sources\[1\]": "header" is listed twice/],
        [{ sources: ["grpc_timeout"] }, /field "sources\[0\]": expected one of "header", "grpc-timeout", "envoy-expected", got "grpc_timeout"/],
        [{ incoming: "trusted" }, /field "incoming": expected one of "trust", "shorten", "ignore", got "trusted"/],
        [{ defaults: [{ prefix: "/a" }] }, /field "defaults\[0\]\.ms": required/],
        [{ defaults: [{ ms: 100 }] }, /field "defaults\[0\]\.destination": a rule needs a destination, a prefix or both/],
        [{ defaults: [{ prefix: "a", ms: 100 }] }, /field "defaults\[0\]\.prefix": expected a path starting with "\/"/],
        [{ crossHop: { mode: "record", slots: 10 } }, /field "crossHop\.slots": expected a multiple of 4, got 10/],
        [{ crossHop: { mode: "both" } }, /field "crossHop\.mode"/],
        [{ crossHop: { table: "A B" } }, /field "crossHop\.table"/],
        [{ maxMS: 10 }, /unknown field "maxMS" \(did you mean "maxMs"\?\)/],
        [{ defaultMs: 100, marginMs: 100 }, /field "marginMs": defaultMs 100 leaves less than minMs 1 after marginMs 100: every request it applies to would be answered 504/],
        [{ defaultMs: 104, marginMs: 100, minMs: 5 }, /field "marginMs": defaultMs 104 leaves less than minMs 5 after marginMs 100/],
        [{ maxMs: 50, marginMs: 50 }, /field "marginMs": maxMs 50 leaves less than minMs 1 after marginMs 50/],
        [{ marginMs: 20, defaultMs: 1000, defaults: [{ prefix: "/a/", ms: 1000 }, { prefix: "/b/", ms: 20 }] },
          /field "marginMs": defaults\[1\]\.ms 20 leaves less than minMs 1 after marginMs 20/],
        [{ defaults: [{ prefix: "/api/", ms: 100 }, { prefix: "/api/v2/", ms: 900 }] },
          /field "defaults\[1\]\.prefix": never matched: defaults\[0\] \(first match wins\) already takes every request it would/],
        [{ defaults: [{ destination: "b.svc", ms: 100 }, { destination: "b.svc", prefix: "/x/", ms: 900 }] }, /field "defaults\[1\]\.prefix": never matched: defaults\[0\]/],
        [{ sources: [] }, /field "sources": empty: no incoming budget could ever be read/],
      ];
      for (const [config, message] of bad) {
        const host = new Host({ vmId: VM_ID });
        assert.throws(() => host.startVm(wasm, { pluginConfig: JSON.stringify(config), rootId: "deadline" }), message, JSON.stringify(config));
        assert.equal(host.logsAt(LogLevel.Critical).length, 1, JSON.stringify(config));
      }
    });
  });
}
