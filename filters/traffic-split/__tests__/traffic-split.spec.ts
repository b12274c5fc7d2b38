import { ConfigReader } from "../../../assembly/config";
import { parseConfig, TrafficSplitConfig, Op, Source } from "../config";
import {
  Inputs, SplitState, Window, EventKind, WINDOW_BUCKETS, POINTS, chooseSubset, cookieValue, queryValue, stickyPoint,
  randomPoint, encodeState, decodeState, stateSize, evaluate, shouldRollBack, hashText, hex64, bucketMsOf,
} from "../core";

function parse(text: string): ConfigReader {
  return ConfigReader.fromString(text, "traffic-split");
}

function config(text: string): TrafficSplitConfig {
  const r = parse(text);
  const c = parseConfig(r);
  expect(r.error).toBeNull();
  return c!;
}

function refused(text: string, ...fragments: string[]): void {
  const r = parse(text);
  expect(parseConfig(r)).toBeNull(text);
  const e = r.error;
  expect(e).not.toBeNull(text);
  for (let i = 0; i < fragments.length; i++) expect(e!.includes(fragments[i])).toBe(true, e!);
}

/** Request headers by name; counts how often each input is read. */
class FakeInputs extends Inputs {
  reads: i32 = 0;
  constructor(readonly c: TrafficSplitConfig, readonly names: string[], readonly values: string[]) { super(); }
  get(i: i32): string | null {
    this.reads++;
    const k = this.names.indexOf(this.c.inputs[i]);
    return k >= 0 ? this.values[k] : null;
  }
}

function choose(c: TrafficSplitConfig, st: SplitState, names: string[], values: string[], random: u32 = 0): string {
  return c.subsets[chooseSubset(c, st, new FakeInputs(c, names, values), random)].name;
}

const T0: i64 = 1_767_225_600_000;

describe("traffic-split config", () => {
  it("runs on documented defaults with an empty configuration", () => {
    const c = config("");
    expect(c.routingHeader).toBe("x-traffic-subset");
    expect(c.allowClientHeader).toBe(false);
    expect(c.subsets.length).toBe(1);
    expect(c.subsets[0].name).toBe("stable");
    expect(c.subsets[0].weight).toBe(100);
    expect(c.rules.length).toBe(0);
    expect(c.stickyBy.length).toBe(0);
    expect(c.rollback.enabled).toBe(true);
    expect(c.rollback.errorRate).toBe(0.1);
    expect(c.rollback.minRequests).toBe(20);
    expect(c.rollback.margin).toBe(0.05);
    expect(c.rollback.windowMs).toBe(10000);
    expect(c.rollback.cooldownMs).toBe(0);
    expect(c.syncIntervalMs).toBe(250);
    expect(c.inputs.length).toBe(1);
  });

  it("reads subsets, sticky sources, rules with every test, and rollback settings", () => {
    const c = config('{"revision":"v2","routingHeader":"X-Subset","allowClientHeader":true,' +
      '"subsets":[{"name":"stable","weight":60},{"name":"canary","weight":30,"ramp":{"stepPercent":5,"intervalMs":2000,"maxPercent":35}},{"name":"dark","weight":10}],' +
      '"stickyBy":[{"header":"X-User"},{"cookie":"uid"},{"query":"u"}],' +
      '"rules":[{"match":[{"header":"x-a","exact":"1"},{"cookie":"beta","present":true},{"query":"q","oneOf":["a","b"]},' +
      '{"header":":path","prefix":"/p"},{"header":"x-b","suffix":"z"},{"header":"x-c","contains":"mid"},{"header":"x-d","absent":true}],' +
      '"subset":"dark","percent":40}],' +
      '"rollback":{"enabled":false,"errorRate":0.2,"minRequests":5,"margin":0.1,"windowMs":5000,"cooldownMs":5000},"syncIntervalMs":100}');
    expect(c.revision).toBe("v2");
    expect(c.routingHeader).toBe("x-subset");
    expect(c.subsets[0].weight).toBe(60);
    expect(c.subsets[1].ramp!.stepPercent).toBe(5);
    expect(c.subsets[1].ramp!.maxPercent).toBe(35);
    expect(c.stickyBy[0].source).toBe(Source.Header);
    expect(c.stickyBy[0].name).toBe("x-user");
    expect(c.stickyBy[1].source).toBe(Source.Cookie);
    expect(c.stickyBy[2].source).toBe(Source.Query);
    const rule = c.rules[0];
    expect(rule.subset).toBe(2);
    expect(rule.percent).toBe(40);
    expect(rule.conditions.length).toBe(7);
    expect(rule.conditions[1].op).toBe(Op.Present);
    expect(rule.conditions[2].values.length).toBe(2);
    expect(rule.conditions[6].op).toBe(Op.Absent);
    expect(c.rollback.enabled).toBe(false);
    expect(c.rollback.cooldownMs).toBe(5000);
    // routing header, x-user, cookie, :path, x-a, x-b, x-c, x-d: each read through one input
    expect(c.inputs.length).toBe(8);
    expect(c.stickyBy[1].input).toBe(rule.conditions[1].selector.input);
  });

  it("refuses unknown keys at every level, naming the path", () => {
    refused('{"subset":[]}', 'unknown field "subset"');
    refused('{"subsets":[{"name":"a"},{"name":"b","wieght":3}]}', 'unknown field "subsets[1].wieght"', "weight");
    refused('{"rules":[{"match":[{"header":"x","exact":"1","extra":1}],"subset":"stable"}]}', 'unknown field "rules[0].match[0].extra"');
    refused('{"rollback":{"errorrate":0.3}}', 'unknown field "rollback.errorrate"');
  });

  it("refuses bad subsets and weights", () => {
    refused('{"subsets":[]}', 'field "subsets"', "1 to 8");
    refused('{"subsets":[{"name":"a b"}]}', 'field "subsets[0].name"', '"a b"');
    refused('{"subsets":[{"name":"a"},{"name":"a"}]}', "duplicate subset name");
    refused('{"subsets":[{"name":"a"},{"name":"b","weight":70},{"name":"c","weight":40}]}', "110%");
    refused('{"subsets":[{"name":"a","weight":80},{"name":"b","weight":30}]}', 'field "subsets[0].weight"', "remainder (70)");
    refused('{"subsets":[{"name":"a"},{"name":"b","weight":101}]}', 'field "subsets[1].weight"');
    refused('{"subsets":[{"name":"a","ramp":{}}]}', 'field "subsets[0].ramp"', "baseline");
    refused('{"subsets":[{"name":"a"},{"name":"b","weight":20,"ramp":{"maxPercent":10}}]}', 'field "subsets[1].ramp.maxPercent"');
    refused('{"subsets":[{"name":"a"},{"name":"b","weight":20,"ramp":{}},{"name":"c","weight":10}]}', "every ramp at its maxPercent");
    refused('{"subsets":[{"name":"a"},{"name":"b","ramp":{"intervalMs":10}}]}', 'field "subsets[1].ramp.intervalMs"');
  });

  it("refuses bad rules, conditions and sticky sources", () => {
    refused('{"rules":[{"subset":"nope"}]}', 'field "rules[0].subset"', '"stable"', '"nope"');
    refused('{"rules":[{"match":[{"header":"x","exact":"1","prefix":"2"}],"subset":"stable"}]}', 'field "rules[0].match[0].prefix"', "exactly one of");
    refused('{"rules":[{"match":[{"header":"x"}],"subset":"stable"}]}', 'field "rules[0].match[0].exact"', "exactly one of");
    refused('{"rules":[{"match":[{"exact":"1"}],"subset":"stable"}]}', 'field "rules[0].match[0].header"');
    refused('{"rules":[{"match":[{"header":"x","present":false}],"subset":"stable"}]}', 'use "absent": true');
    refused('{"rules":[{"match":[{"header":"x","oneOf":[]}],"subset":"stable"}]}', "non-empty array");
    refused('{"rules":[{"match":[{"header":"bad name","exact":"1"}],"subset":"stable"}]}', '"bad name"');
    refused('{"rules":[{"subset":"stable","percent":150}]}', 'field "rules[0].percent"');
    refused('{"stickyBy":[{"header":"a","cookie":"b"}]}', 'field "stickyBy[0].cookie"', "exactly one of");
    refused('{"stickyBy":[{"cookie":""}]}', 'field "stickyBy[0].cookie"');
    refused('{"routingHeader":":path"}', 'field "routingHeader"');
  });

  it("refuses bad rollback settings", () => {
    refused('{"rollback":{"errorRate":1}}', 'field "rollback.errorRate"');
    refused('{"rollback":{"errorRate":-0.1}}', 'field "rollback.errorRate"');
    refused('{"rollback":{"minRequests":0}}', 'field "rollback.minRequests"');
    refused('{"rollback":{"windowMs":500}}', 'field "rollback.windowMs"');
    refused('{"rollback":{"cooldownMs":1000}}', 'field "rollback.cooldownMs"', "at least windowMs");
    refused('{"syncIntervalMs":10}', 'field "syncIntervalMs"');
  });
});

describe("traffic-split request values", () => {
  it("finds cookies among others, trims spaces and quotes", () => {
    expect(cookieValue("a=1; uid=u-42; b=2", "uid")).toBe("u-42");
    expect(cookieValue("uid=first;uid=second", "uid")).toBe("first");
    expect(cookieValue(' uid = "quoted" ', "uid")).toBe("quoted");
    expect(cookieValue("xuid=1; uidx=2", "uid")).toBeNull();
    expect(cookieValue("uid=", "uid")).toBe("");
    expect(cookieValue("", "uid")).toBeNull();
    expect(cookieValue("novalue; uid=7", "uid")).toBe("7");
  });

  it("finds raw query parameters, ignoring the fragment", () => {
    expect(queryValue("/p?a=1&user=42&b", "user")).toBe("42");
    expect(queryValue("/p?a=1&b", "b")).toBe("");
    expect(queryValue("/p?a=1#user=3", "user")).toBeNull();
    expect(queryValue("/p?user=a%20b", "user")).toBe("a%20b");
    expect(queryValue("/p", "user")).toBeNull();
    expect(queryValue("/p?username=1", "user")).toBeNull();
  });

  it("gives a key the same point every time, a new cohort per revision, and spreads keys evenly", () => {
    expect(stickyPoint("v1", "user-1")).toBe(stickyPoint("v1", "user-1"));
    expect(stickyPoint("v1", "user-1") < POINTS).toBe(true);
    let moved = 0;
    let below30 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const key = "user-" + i.toString();
      const p = stickyPoint("v1", key);
      if (p < 3000) below30++;
      if ((p < 3000) != (stickyPoint("v2", key) < 3000)) moved++;
    }
    // 30% of 20000 = 6000, binomial sd ~65
    expect(below30 > 5700 && below30 < 6300).toBe(true, below30.toString());
    // a new salt draws an independent cohort: ~42% change side
    expect(moved > 7000).toBe(true, moved.toString());
    // ("a","bc") and ("ab","c") differ: the separator is part of the hash
    expect(stickyPoint("a", "bc") != stickyPoint("ab", "c")).toBe(true);
    // non-ASCII keys hash by their UTF-8 bytes without trouble
    expect(stickyPoint("", "josé😀") < POINTS).toBe(true);
    expect(randomPoint(u64.MAX_VALUE) < POINTS).toBe(true);
    expect(randomPoint(0)).toBe(0);
  });

  it("hashes the configuration's JSON (the shared-state key) with FNV-1a 64 over UTF-8, as 16 hex digits", () => {
    expect(hashText('{"revision":"a"}') != hashText('{"revision":"b"}')).toBe(true);
    expect(hashText("")).toBe(0xcbf29ce484222325);
    expect(hashText("a")).toBe(0xaf63dc4c8601ec8c); // the published FNV-1a 64 test vector
    expect(hex64(hashText("a"))).toBe("af63dc4c8601ec8c");
    expect(hex64(1)).toBe("0000000000000001");
  });

  it("fingerprints a configuration by its content, not its layout", () => {
    const a = parse('{ "revision" : "v1",\n  "subsets": [{"name": "stable"}] }');
    const b = parse('{"revision":"v1","subsets":[{"name":"stable"}]}');
    expect(a.toJson()).toBe(b.toJson());
    expect(parse('{"revision":"v2","subsets":[{"name":"stable"}]}').toJson() != b.toJson()).toBe(true);
  });
});

describe("traffic-split choice", () => {
  it("sends matching requests to the rule's subset regardless of weight", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":0}],' +
      '"rules":[{"match":[{"header":"x-canary","exact":"always"}],"subset":"canary"},' +
      '{"match":[{"cookie":"beta","present":true},{"query":"v","oneOf":["2","3"]}],"subset":"canary"}]}');
    const st = SplitState.initial(c, T0);
    expect(choose(c, st, ["x-canary"], ["always"])).toBe("canary");
    expect(choose(c, st, ["x-canary"], ["Always"])).toBe("stable");
    expect(choose(c, st, ["cookie", ":path"], ["beta=1", "/x?v=3"])).toBe("canary");
    expect(choose(c, st, ["cookie", ":path"], ["beta=1", "/x?v=4"])).toBe("stable");
    expect(choose(c, st, [":path"], ["/x?v=3"])).toBe("stable");
  });

  it("ignores a client's routing header unless allowed, and then only for a live subset", () => {
    const text = '{"subsets":[{"name":"stable"},{"name":"canary","weight":0}]';
    const strict = config(text + "}");
    const st = SplitState.initial(strict, T0);
    expect(choose(strict, st, ["x-traffic-subset"], ["canary"])).toBe("stable");
    const open = config(text + ',"allowClientHeader":true}');
    const st2 = SplitState.initial(open, T0);
    expect(choose(open, st2, ["x-traffic-subset"], ["canary"])).toBe("canary");
    expect(choose(open, st2, ["x-traffic-subset"], ["unknown"])).toBe("stable");
    st2.subsets[1].rolledBack = true;
    expect(choose(open, st2, ["x-traffic-subset"], ["canary"])).toBe("stable");
  });

  it("lets a rule on the routing header itself allow the client's choice", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary"}],"rules":[{"match":[{"header":"x-traffic-subset","exact":"canary"},{"header":"x-tester","present":true}],"subset":"canary"}]}');
    const st = SplitState.initial(c, T0);
    expect(choose(c, st, ["x-traffic-subset", "x-tester"], ["canary", "1"])).toBe("canary");
    expect(choose(c, st, ["x-traffic-subset"], ["canary"])).toBe("stable");
  });

  it("splits by sticky points: later subsets from point 0, the baseline takes the rest", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"a","weight":20},{"name":"b","weight":10}],"stickyBy":[{"header":"x-user-id"},{"cookie":"uid"}]}');
    const st = SplitState.initial(c, T0);
    expect(choose(c, st, [], [], 0)).toBe("a");
    expect(choose(c, st, [], [], 1999)).toBe("a");
    expect(choose(c, st, [], [], 2000)).toBe("b");
    expect(choose(c, st, [], [], 2999)).toBe("b");
    expect(choose(c, st, [], [], 3000)).toBe("stable");
    // a sticky key wins over the random point; the header comes before the cookie
    let key = "";
    for (let i = 0; i < 1000; i++) {
      key = "u" + i.toString();
      if (stickyPoint("", key) < 2000) break;
    }
    expect(choose(c, st, ["x-user-id"], [key], 9999)).toBe("a");
    expect(choose(c, st, ["cookie"], ["uid=" + key], 9999)).toBe("a");
    expect(choose(c, st, ["x-user-id", "cookie"], ["", "uid=" + key], 9999)).toBe("a");
  });

  it("sends a rule's percentage by sticky point and the rest to the baseline", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":100}],"rules":[{"match":[{"header":"x-beta","present":true}],"subset":"canary","percent":25}]}');
    const st = SplitState.initial(c, T0);
    expect(choose(c, st, ["x-beta"], ["1"], 2499)).toBe("canary");
    expect(choose(c, st, ["x-beta"], ["1"], 2500)).toBe("stable");
    expect(choose(c, st, [], [], 9999)).toBe("canary");
  });

  it("never chooses a rolled-back subset, not even by rule", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":30}],"rules":[{"match":[{"header":"x-canary","present":true}],"subset":"canary"}]}');
    const st = SplitState.initial(c, T0);
    st.subsets[1].rolledBack = true;
    st.subsets[1].weight = 0;
    expect(choose(c, st, ["x-canary"], ["1"])).toBe("stable");
    expect(choose(c, st, [], [], 0)).toBe("stable");
  });

  it("reads no request header when nothing depends on one", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":0}],"stickyBy":[{"header":"x-user-id"}]}');
    const st = SplitState.initial(c, T0);
    const inputs = new FakeInputs(c, ["x-user-id"], ["u"]);
    expect(chooseSubset(c, st, inputs, 0)).toBe(0);
    expect(inputs.reads).toBe(0);
  });
});

describe("traffic-split window and shared state", () => {
  it("adds per bucket, evicts old buckets, drops outcomes older than the slot, and sums the window", () => {
    const w = new Window(2);
    expect(w.isEmpty()).toBe(true);
    w.add(100, 1, 5, 2);
    w.add(105, 1, 3, 1);
    w.add(105, 0, 7, 0);
    w.sum(1, 0, 105);
    expect(w.requests).toBe(8);
    expect(w.failures).toBe(3);
    w.sum(1, 101, 105); // trial started after bucket 100
    expect(w.requests).toBe(3);
    w.add(110, 1, 1, 1); // same slot as 100: evicts it
    w.sum(1, 0, 110);
    expect(w.requests).toBe(4);
    w.add(100, 1, 50, 50); // older than its slot's bucket: dropped
    w.sum(1, 0, 110);
    expect(w.requests).toBe(4);
    w.sum(1, 0, 115); // bucket 105 left the window [106, 115]
    expect(w.requests).toBe(1);
    const other = new Window(2);
    other.add(110, 1, 2, 0);
    other.add(111, 0, 4, 4);
    w.addAll(other);
    w.sum(1, 0, 111); // buckets 105 (3) and 110 (1 + 2)
    expect(w.requests).toBe(6);
    w.sum(0, 0, 111);
    expect(w.failures).toBe(4);
    w.clear();
    expect(w.isEmpty()).toBe(true);
    expect(WINDOW_BUCKETS).toBe(10);
  });

  it("round-trips the shared state and refuses values of another shape", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":30}]}');
    const st = SplitState.initial(c, T0);
    st.subsets[1].rolledBack = true;
    st.subsets[1].weight = 0;
    st.subsets[1].rolledBackAtMs = T0 + 1234;
    st.subsets[1].rollbacks = 3;
    st.window.add(T0 / 1000, 1, 9, 4);
    const buf = encodeState(st);
    expect(buf.byteLength).toBe(stateSize(2));
    expect(stateSize(2)).toBe(336);
    const back = decodeState(buf, 2)!;
    expect(back.createdMs).toBe(T0);
    expect(back.subsets[1].rolledBack).toBe(true);
    expect(back.subsets[1].rolledBackAtMs).toBe(T0 + 1234);
    expect(back.subsets[1].rollbacks).toBe(3);
    expect(back.subsets[0].weight).toBe(70); // as stored; the live baseline weight is the remainder:
    back.window.sum(1, 0, T0 / 1000);
    expect(back.window.requests).toBe(9);
    expect(back.window.failures).toBe(4);
    expect(back.baselineWeight()).toBe(100);
    expect(decodeState(buf, 3)).toBeNull();
    expect(decodeState(new ArrayBuffer(856), 2)).toBeNull();
    expect(decodeState(new ArrayBuffer(3), 2)).toBeNull();
  });
});

describe("traffic-split decisions", () => {
  it("rolls back only above errorRate, with minRequests, and worse than the baseline by the margin", () => {
    const c = config('{"rollback":{"errorRate":0.1,"minRequests":20,"margin":0.05}}');
    const rb = c.rollback;
    expect(shouldRollBack(rb, 19, 19, 0, 0)).toBe(false);
    expect(shouldRollBack(rb, 20, 2, 0, 0)).toBe(false);
    expect(shouldRollBack(rb, 20, 3, 0, 0)).toBe(true);
    expect(shouldRollBack(rb, 100, 30, 100, 26)).toBe(false); // stable is as bad: not the canary's fault
    expect(shouldRollBack(rb, 100, 30, 100, 24)).toBe(true);
    expect(shouldRollBack(rb, 100, 30, 10, 10)).toBe(true); // too few baseline requests: counts as 0
  });

  it("rolls a failing canary back once and keeps it there without a cool-down", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":30}],"rollback":{"minRequests":10}}');
    const st = SplitState.initial(c, T0);
    const b = T0 / bucketMsOf(c.rollback);
    st.window.add(b, 0, 70, 0);
    st.window.add(b, 1, 30, 9);
    const ev = evaluate(c, st, T0 + 500);
    expect(ev.length).toBe(1);
    expect(ev[0].kind).toBe(EventKind.RolledBack);
    expect(ev[0].subset).toBe(1);
    expect(ev[0].fromWeight).toBe(30);
    expect(ev[0].requests).toBe(30);
    expect(ev[0].failures).toBe(9);
    expect(ev[0].baseRequests).toBe(70);
    expect(st.subsets[1].rolledBack).toBe(true);
    expect(st.subsets[1].weight).toBe(0);
    expect(st.subsets[1].rollbacks).toBe(1);
    expect(st.baselineWeight()).toBe(100);
    expect(evaluate(c, st, T0 + 86_400_000).length).toBe(0);
    expect(st.subsets[1].rolledBack).toBe(true);
  });

  it("restores the configured weight after a cool-down and ignores the outcomes before it", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":30}],"rollback":{"minRequests":10,"windowMs":10000,"cooldownMs":10000}}');
    const st = SplitState.initial(c, T0);
    const b = T0 / 1000;
    st.window.add(b, 1, 30, 9);
    expect(evaluate(c, st, T0 + 100)[0].kind).toBe(EventKind.RolledBack);
    expect(evaluate(c, st, T0 + 10_099).length).toBe(0);
    // a straggler of the old trial, in the bucket of the restore
    st.window.add(b + 10, 1, 20, 20);
    const ev = evaluate(c, st, T0 + 10_100);
    expect(ev.length).toBe(1);
    expect(ev[0].kind).toBe(EventKind.Restored);
    expect(st.subsets[1].weight).toBe(30);
    expect(st.subsets[1].rolledBack).toBe(false);
    expect(evaluate(c, st, T0 + 11_500).length).toBe(0);
    st.window.add(b + 11, 1, 10, 5);
    expect(evaluate(c, st, T0 + 11_600)[0].kind).toBe(EventKind.RolledBack);
    expect(st.subsets[1].rollbacks).toBe(2);
  });

  it("ramps up one step per interval while healthy, holds while failing, and stops at the maximum", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":10,"ramp":{"stepPercent":15,"intervalMs":5000,"maxPercent":40}}],"rollback":{"minRequests":100}}');
    const st = SplitState.initial(c, T0);
    expect(evaluate(c, st, T0 + 4999).length).toBe(0);
    let ev = evaluate(c, st, T0 + 5000);
    expect(ev[0].kind).toBe(EventKind.Stepped);
    expect(ev[0].toWeight).toBe(25);
    // failing below minRequests: no rollback, but no step either
    st.window.add((T0 + 9000) / 1000, 1, 10, 5);
    expect(evaluate(c, st, T0 + 10_000).length).toBe(0);
    expect(st.subsets[1].weight).toBe(25);
    // healthy again once those outcomes leave the window
    ev = evaluate(c, st, T0 + 19_000);
    expect(ev[0].toWeight).toBe(40);
    expect(evaluate(c, st, T0 + 60_000).length).toBe(0);
    expect(st.subsets[1].weight).toBe(40);
  });

  it("counts but never rolls back when rollback is disabled", () => {
    const c = config('{"subsets":[{"name":"stable"},{"name":"canary","weight":30}],"rollback":{"enabled":false,"minRequests":1}}');
    const st = SplitState.initial(c, T0);
    st.window.add(T0 / 1000, 1, 100, 100);
    expect(evaluate(c, st, T0 + 10).length).toBe(0);
    expect(st.subsets[1].weight).toBe(30);
  });
});
