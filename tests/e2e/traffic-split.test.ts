// traffic-split in a real Envoy at concurrency 2, in every mode envoyModes() offers, with the shipped
// envoy-configs/traffic-split.yaml: the 30% sticky split, header rules, spoofed routing headers, the automatic rollback
// at 100 requests/s seen by both workers, refused configurations, and (process mode) a configuration update.
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import {
  closeHttp, envoyModes, freePorts, notYet, projectRoot, request, startEnvoy, startEnvoyExpectFailure, startUpstream, waitFor, waitUntil,
  type Bootstrap, type Envoy, type EnvoyMode, type Upstream,
} from "../harness/index.js";

const CONFIG = "envoy-configs/traffic-split.yaml";
const WASM = { "traffic-split": "build/traffic-split.wasm" };
const ROUTING = "x-traffic-subset";

after(closeHttp);

/** Only for pacing open-loop load; tests wait on conditions (waitFor), never on time. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Wasm filter's PluginConfig inside a bootstrap (or a listener). */
function pluginConfigOf(listener: Bootstrap): Bootstrap {
  return listener.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config;
}

/** The shipped plugin configuration (JSON), changed by `edit`. */
function shippedWith(cfg: Bootstrap, edit: (json: Bootstrap) => void): void {
  const plugin = pluginConfigOf(cfg.static_resources.listeners[0]).configuration;
  const json = JSON.parse(plugin.value);
  edit(json);
  plugin.value = JSON.stringify(json);
}

interface Answer {
  status: number;
  /** The upstream that answered (x-upstream-name), "" for Envoy's own replies. */
  upstream: string;
  /** The routing header the upstream received. */
  routed: string;
}

async function get(envoy: Envoy, headers: Record<string, string> = {}): Promise<Answer> {
  const r = await request(envoy.url() + "/", { headers });
  const upstream = r.headers["x-upstream-name"] ?? "";
  const routed = upstream ? String((r.json() as { headers: Record<string, string> }).headers[ROUTING]) : "";
  return { status: r.status, upstream, routed };
}

/** Runs `fn` over 0..n-1, `width` at a time. */
async function batched<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += width) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => fn(i + j)))));
  }
  return out;
}

/** One HTTP/1.1 request on a new connection (so Envoy places it on either worker), raw header lines as given. */
function rawGet(port: number, headerLines: string[]): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.setEncoding("utf8");
    socket.setTimeout(10_000, () => socket.destroy(new Error("raw request timed out")));
    socket.on("data", (d) => (data += d));
    socket.on("error", reject);
    socket.on("end", () => {
      try {
        const split = data.indexOf("\r\n\r\n");
        const head = data.slice(0, split);
        let body = data.slice(split + 4);
        if (/\r\ntransfer-encoding: chunked/i.test(head)) body = dechunk(body);
        const status = Number(head.split(" ")[1]);
        const upstream = /\r\nx-upstream-name: ([^\r]*)/i.exec(head)?.[1] ?? "";
        const routed = upstream ? String(JSON.parse(body).headers[ROUTING]) : "";
        resolvePromise({ status, upstream, routed });
      } catch (e) {
        reject(e);
      }
    });
    socket.write(["GET / HTTP/1.1", "host: app", ...headerLines, "connection: close", "", ""].join("\r\n"));
  });
}

/** A chunked HTTP/1.1 body (ASCII here) without its chunk framing. */
function dechunk(text: string): string {
  let out = "";
  for (let at = 0; ; ) {
    const eol = text.indexOf("\r\n", at);
    const size = parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/** Connections each worker accepted so far on the listener on `port`. */
async function workerConnections(envoy: Envoy, port: number): Promise<number[]> {
  const stats = await envoy.stats(`listener\\.127\\.0\\.0\\.1_${port}\\.worker_[0-9]+\\.downstream_cx_total`);
  return [0, 1].map((w) => stats[`listener.127.0.0.1_${port}.worker_${w}.downstream_cx_total`] ?? 0);
}

/**
 * Waits until a round of requests on fresh connections (one per request, so both workers serve some) reaches both
 * workers and every answer satisfies `accept`: how a test sees that every worker adopted a decision, which each does
 * at its own next sync.
 */
async function waitOnBothWorkers(envoy: Envoy, port: number, what: string, headerLines: (i: number) => string[], accept: (a: Answer) => boolean): Promise<void> {
  let round = 0;
  await waitFor(`every worker to ${what}`, async () => {
    const before = await workerConnections(envoy, port);
    const r = round++;
    const answers = await batched(8, 8, (i) => rawGet(port, headerLines(r * 8 + i)));
    const after = await workerConnections(envoy, port);
    const both = after[0]! > before[0]! && after[1]! > before[1]!;
    return both && answers.every(accept) ? answers : notYet({ bothWorkers: both, upstreams: answers.map((a) => a.upstream) });
  }, { timeoutMs: 5_000 });
}

interface Paced {
  at: number;
  answer: Answer;
}

/** Open-loop load: `rps` requests per second for `ms`, user ids `${prefix}-<n>`; answers in send order. */
async function paced(envoy: Envoy, rps: number, ms: number, prefix: string): Promise<Paced[]> {
  const start = Date.now();
  const pending: Promise<Paced>[] = [];
  for (let i = 0; i < Math.floor((rps * ms) / 1000); i++) {
    const due = start + (i * 1000) / rps;
    const wait = due - Date.now();
    // Pacing, not waiting for a condition: open-loop load fires each request at its scheduled time.
    if (wait > 0) await sleep(wait);
    const at = Date.now();
    pending.push(get(envoy, { "x-user-id": `${prefix}-${i}` }).then((answer) => ({ at, answer })));
  }
  return Promise.all(pending);
}

const series = (subset: string, what: string) => `wasmcustom.subset=.=${subset};.;resilience_traffic_split_${what}`;

interface Fixture {
  stable: Upstream;
  canary: Upstream;
  envoy: Envoy;
}

/**
 * Hooks running the shipped config (concurrency 2) against fresh "stable" and "canary" upstreams, for one describe;
 * `plugin` replaces the filter's configuration.
 */
function splitEnvoy(mode: EnvoyMode, plugin?: object): Fixture {
  const fx = {} as Fixture;
  before(async () => {
    fx.stable = await startUpstream({ name: "stable" });
    fx.canary = await startUpstream({ name: "canary" });
    const mutate = plugin ? (cfg: Bootstrap) => (pluginConfigOf(cfg.static_resources.listeners[0]).configuration.value = JSON.stringify(plugin)) : undefined;
    fx.envoy = await startEnvoy({ config: CONFIG, wasm: WASM, clusters: { stable: fx.stable, canary: fx.canary }, concurrency: 2, mode, mutate });
  });
  after(async () => {
    await fx.envoy?.stop();
    await fx.stable?.close();
    await fx.canary?.close();
  });
  return fx;
}

for (const mode of await envoyModes()) {
  describe(`traffic-split routing in ${mode} mode`, () => {
    const fx = splitEnvoy(mode);

    test("weight 30%: over 3,000 distinct user ids the canary share is 30% +- 3%, and a user id always lands on the same subset", async () => {
      const { envoy, stable, canary } = fx;
      const users = Array.from({ length: 3000 }, (_, i) => `user-${i}`);
      const first = await batched(users.length, 16, (i) => get(envoy, { "x-user-id": users[i]! }));
      for (const a of first) {
        assert.equal(a.status, 200);
        assert.equal(a.routed, a.upstream, "the route table sent the request to the subset the filter chose");
      }
      const onCanary = first.filter((a) => a.upstream === "canary").length;
      console.log(`# canary share over 3,000 user ids: ${((onCanary / 3000) * 100).toFixed(2)}%`);
      assert.ok(onCanary >= 810 && onCanary <= 990, `canary share ${(onCanary / 30).toFixed(2)}%`);
      // Every user again, in reverse order over pooled connections, then a sample on fresh connections (either worker).
      const again = await batched(users.length, 16, (i) => get(envoy, { "x-user-id": users[users.length - 1 - i]! }));
      again.reverse().forEach((a, i) => assert.equal(a.upstream, first[i]!.upstream, users[i]));
      const sample = await batched(200, 8, (i) => rawGet(envoy.port(), [`x-user-id: ${users[i * 15]}`]));
      sample.forEach((a, i) => assert.equal(a.upstream, first[i * 15]!.upstream, users[i * 15]));
      const [w0, w1] = await workerConnections(envoy, envoy.port());
      assert.ok(w0! > 0 && w1! > 0, `both workers served connections (${w0}, ${w1})`);
    });

    test("the uid cookie is the sticky key when there is no x-user-id", async () => {
      const { envoy, stable, canary } = fx;
      const first = await batched(600, 16, (i) => get(envoy, { cookie: `theme=dark; uid=c-${i}` }));
      const onCanary = first.filter((a) => a.upstream === "canary").length;
      assert.ok(onCanary > 120 && onCanary < 240, `${onCanary} of 600 cookie users on the canary`);
      const again = await batched(600, 16, (i) => get(envoy, { cookie: `uid=c-${i}` }));
      again.forEach((a, i) => assert.equal(a.upstream, first[i]!.upstream, `uid=c-${i}`));
    });

    test("a header rule sends matching requests to the canary regardless of weight; a spoofed routing header has no effect", async () => {
      const { envoy, stable, canary } = fx;
      const users = Array.from({ length: 400 }, (_, i) => `rule-${i}`);
      const plain = await batched(users.length, 16, (i) => get(envoy, { "x-user-id": users[i]! }));
      const stableUsers = users.filter((_, i) => plain[i]!.upstream === "stable");
      assert.ok(stableUsers.length > 200);
      stable.clear();
      canary.clear();
      // The rule wins over the weight: stable users with x-canary: always go to the canary.
      const forced = await batched(stableUsers.length, 16, (i) => get(envoy, { "x-user-id": stableUsers[i]!, "x-canary": "always" }));
      assert.deepEqual(new Set(forced.map((a) => a.upstream)), new Set(["canary"]));
      assert.equal(canary.hits.total, stableUsers.length);
      // A client naming the canary in the routing header stays where the split put it, and the upstream sees our value.
      const spoofed = await batched(stableUsers.length, 16, (i) => get(envoy, { "x-user-id": stableUsers[i]!, [ROUTING]: "canary" }));
      for (const a of spoofed) assert.deepEqual([a.upstream, a.routed], ["stable", "stable"]);
      // Repeated routing headers are all replaced by one value (fresh connections: both workers).
      const twice = await batched(100, 8, (i) => rawGet(envoy.port(), [`x-user-id: ${stableUsers[i]}`, `${ROUTING}: canary`, `${ROUTING}: canary`]));
      for (const a of twice) assert.deepEqual([a.upstream, a.routed], ["stable", "stable"]);
      assert.equal(canary.hits.total, stableUsers.length, "only the rule's requests reached the canary");
    });

    test("metrics count requests per subset and show the current weights", async () => {
      const { envoy, stable, canary } = fx;
      // Counters are added at each sync (250 ms): wait until both subsets' counts match their clusters'.
      const stats = await waitFor("the per-subset counts to match the clusters' upstream_rq_total", async () => {
        const now = await envoy.stats("resilience_traffic_split|cluster\\.(stable|canary)\\.upstream_rq_total$");
        const done = ["stable", "canary"].every((c) => now[series(c, "requests_total")] === now[`cluster.${c}.upstream_rq_total`]);
        return done ? now : notYet(now);
      });
      assert.ok(stats["cluster.canary.upstream_rq_total"]! > 0);
      assert.equal(stats[series("stable", "requests_total")], stats["cluster.stable.upstream_rq_total"], "stable: every routed request counted once");
      assert.equal(stats[series("canary", "requests_total")], stats["cluster.canary.upstream_rq_total"], "canary: every routed request counted once");
      assert.equal(stats[series("canary", "weight_percent")], 30);
      assert.equal(stats[series("stable", "weight_percent")], 70);
      assert.equal(stats[series("canary", "rolled_back")], 0);
      assert.equal(stats[series("canary", "rollbacks_total")], 0);
      assert.equal(stats[series("canary", "failures_total")], 0);
      assert.match(await envoy.prometheus(), /^resilience_traffic_split_weight_percent\{subset="canary"\} 30$/m);
    });
  });

  describe(`traffic-split automatic rollback in ${mode} mode`, () => {
    const fx = splitEnvoy(mode);

    test("a canary answering 30% 503 stops getting traffic within 5 s of the burst at 100 requests/s, on both workers, and stays stopped", async () => {
      const { envoy, stable, canary } = fx;
      // Healthy first: the canary takes its 30% and nothing is rolled back.
      const healthy = await paced(envoy, 100, 2000, "warm");
      const warmCanary = healthy.filter((p) => p.answer.upstream === "canary").length;
      assert.ok(warmCanary > 30, `${warmCanary} of 200 warm-up requests on the canary`);
      assert.ok(healthy.every((p) => p.answer.status === 200));

      const logMark = envoy.logOffset();
      const burstStart = Date.now();
      canary.script({ name: "canary", failureRate: 0.3, failure: { status: 503 }, seed: 7 });
      const burst = await paced(envoy, 100, 9000, "burst");

      const hits = canary.requests.map((r) => r.at - burstStart);
      const lastCanaryMs = Math.max(...hits);
      const line = await envoy.waitForLog(/rolled back subset "canary"/, { since: logMark, timeoutMs: 1000 });
      console.log(`# canary: ${canary.hits.total} requests (${canary.hits.byStatus["503"] ?? 0} answered 503) after the burst began; last one ${lastCanaryMs} ms after it`);
      assert.ok(canary.hits.total > 0, "the canary got traffic during the burst");
      assert.ok(lastCanaryMs <= 5000, `traffic to the canary stopped ${lastCanaryMs} ms after the burst began`);
      assert.match(line, /critical/);
      assert.match(line, /revision "canary-v2".*error rate .* weight 30% -> 0% on every worker until a new configuration/);
      // Stable kept serving: every request after the canary's last one was answered 200 by stable.
      const afterStop = burst.filter((p) => p.at - burstStart > lastCanaryMs);
      assert.ok(afterStop.length > 300, `${afterStop.length} requests after the rollback`);
      for (const p of afterStop) assert.deepEqual([p.answer.status, p.answer.upstream], [200, "stable"]);
      assert.equal(burst.filter((p) => p.answer.status !== 200 && p.answer.upstream !== "canary").length, 0, "no error from stable or Envoy");

      // Both workers route by the rollback: fresh connections land on each, and none reaches the canary.
      const port = envoy.port();
      const before = await workerConnections(envoy, port);
      const fresh = await batched(300, 6, (i) => rawGet(port, [`x-user-id: fresh-${i}`]));
      const afterConns = await workerConnections(envoy, port);
      assert.ok(afterConns[0]! > before[0]! && afterConns[1]! > before[1]!, `fresh connections per worker: ${before} -> ${afterConns}`);
      for (const a of fresh) assert.deepEqual([a.status, a.upstream], [200, "stable"]);
      const total = canary.hits.total;
      // And it stays stopped.
      await paced(envoy, 100, 2000, "later");
      assert.equal(canary.hits.total, total, "no request reached the canary after the rollback");

      const stats = await envoy.stats("resilience_traffic_split");
      assert.equal(stats[series("canary", "rollbacks_total")], 1, "one rollback, counted once across workers");
      assert.equal(stats[series("canary", "weight_percent")], 0);
      assert.equal(stats[series("canary", "rolled_back")], 1);
      assert.equal(stats[series("stable", "weight_percent")], 100);
      assert.ok(stats[series("canary", "failures_total")]! >= 3);
      assert.equal((envoy.logs().match(/rolled back subset "canary"/g) ?? []).length, 1, "logged once");
    });
  });

  describe(`traffic-split ramp, cool-down and client choice in ${mode} mode`, () => {
    const fx = splitEnvoy(mode, {
      revision: "ramp-test",
      allowClientHeader: true,
      subsets: [{ name: "stable" }, { name: "canary", weight: 10, ramp: { stepPercent: 20, intervalMs: 1000, maxPercent: 50 } }],
      stickyBy: [{ header: "x-user-id" }],
      rollback: { minRequests: 10, windowMs: 1000, cooldownMs: 3000 },
    });
    const weight = async () => (await fx.envoy.stats("resilience_traffic_split_weight_percent"))[series("canary", "weight_percent")];

    test("the canary ramps 10% -> 30% -> 50% a second apart, honours an allowed client header, rolls back, and returns after its cool-down", async () => {
      const { envoy, canary } = fx;
      // The ramp started when the configuration was loaded: two steps, one interval apart, then it holds at maxPercent.
      await envoy.waitForLog(/ramp step for subset "canary" \(revision "ramp-test"\): weight 30% -> 50%/, { timeoutMs: 5000 });
      const steps = envoy.logs().split("\n").filter((l) => /ramp step for subset "canary"/.test(l));
      assert.equal(steps.length, 2, steps.join("\n"));
      assert.match(steps[0]!, /weight 10% -> 30%/);
      const stamp = (l: string) => Date.parse(/^\[([^\]]+)\]/.exec(l)![1]!.replace(" ", "T") + "Z");
      const gap = stamp(steps[1]!) - stamp(steps[0]!);
      assert.ok(gap >= 900 && gap <= 1600, `steps ${gap} ms apart`);
      await waitUntil("the canary's weight gauge", weight, (w) => w === 50);
      assert.equal(await weight(), 50);
      const share = (await batched(400, 16, (i) => get(envoy, { "x-user-id": `ramp-${i}` }))).filter((a) => a.upstream === "canary").length;
      assert.ok(share > 160 && share < 240, `${share} of 400 on the canary at 50%`);

      // allowClientHeader: a client may pick a live subset.
      const picked = await batched(40, 8, (i) => get(envoy, { "x-user-id": `pick-${i}`, [ROUTING]: "canary" }));
      for (const a of picked) assert.deepEqual([a.upstream, a.routed], ["canary", "canary"]);

      // The canary fails every request: rolled back (1 s window, 10 requests), and the client header no longer reaches it.
      const mark = envoy.logOffset();
      canary.script({ name: "canary", status: 503 });
      await batched(30, 10, (i) => get(envoy, { "x-user-id": `fail-${i}`, [ROUTING]: "canary" }));
      const rolled = await envoy.waitForLog(/rolled back subset "canary" \(revision "ramp-test"\).* for 3000 ms/, { since: mark, timeoutMs: 2000 });
      const rolledAt = stamp(rolled);
      await waitUntil("the canary's weight gauge", weight, (w) => w === 0);
      await waitOnBothWorkers(envoy, envoy.port(), "refuse the client's pick of the rolled-back canary",
        (i) => [`x-user-id: adopt-${i}`, `${ROUTING}: canary`], (a) => a.upstream === "stable");
      assert.equal(await weight(), 0);
      const refused = await batched(40, 8, (i) => get(envoy, { "x-user-id": `pick-${i}`, [ROUTING]: "canary" }));
      for (const a of refused) assert.deepEqual([a.upstream, a.routed], ["stable", "stable"]);

      // After the cool-down the configured 10% is back (and ramping again), and healthy traffic reaches the canary.
      canary.script({ name: "canary", status: 200 });
      const restored = await envoy.waitForLog(/cool-down over, subset "canary" \(revision "ramp-test"\) restored to weight 10%/, { since: mark, timeoutMs: 6000 });
      const after = stamp(restored) - rolledAt;
      // Log stamps trail the tick's clock reading by the work before the log call: the gap may undershoot 3000 by a few ms.
      assert.ok(after >= 2950 && after <= 3600, `restored ${after} ms after the rollback`);
      // The other worker adopts it at its next sync.
      await waitOnBothWorkers(envoy, envoy.port(), "honour the client's pick of the restored canary",
        (i) => [`x-user-id: back-${i}`, `${ROUTING}: canary`], (a) => a.upstream === "canary");
      const back = await batched(40, 8, (i) => get(envoy, { "x-user-id": `pick-${i}`, [ROUTING]: "canary" }));
      for (const a of back) assert.equal(a.upstream, "canary");
      assert.equal((await envoy.stats("rollbacks_total"))[series("canary", "rollbacks_total")], 1);
    });
  });

  describe(`traffic-split configuration errors in ${mode} mode`, () => {
    test("a rule naming an unknown subset makes Envoy refuse to start, and its log names the field", async () => {
      const r = await startEnvoyExpectFailure({
        config: CONFIG, wasm: WASM, concurrency: 2, mode,
        mutate: (cfg) => shippedWith(cfg, (json) => (json.rules[0].subset = "canery")),
      });
      assert.notEqual(r.exitCode, 0);
      assert.match(r.log, /traffic-split: field "rules\[0\]\.subset": expected the name of a subset \("stable", "canary"\), got "canery"/);
      assert.match(r.log, /Unable to create Wasm plugin/);
    });

    test("weights above 100% and misspelled keys are refused, not ignored", async () => {
      const over = await startEnvoyExpectFailure({
        config: CONFIG, wasm: WASM, concurrency: 2, mode,
        mutate: (cfg) => shippedWith(cfg, (json) => json.subsets.push({ name: "dark", weight: 80 })),
      });
      assert.match(over.log, /field "subsets": the weights after the first subset add up to 110%, more than 100/);
      const typo = await startEnvoyExpectFailure({
        config: CONFIG, wasm: WASM, concurrency: 2, mode,
        mutate: (cfg) => shippedWith(cfg, (json) => (json.rollback.errorRat = 0.2)),
      });
      assert.match(typo.log, /unknown field "rollback\.errorRat" \(did you mean "errorRate"\?\)/);
    });
  });
}

// A configuration update needs Envoy to watch a file on this machine (filesystem LDS): process mode only.
describe("traffic-split configuration update (process mode, filesystem LDS)", () => {
  let stable: Upstream;
  let canary: Upstream;
  let envoy: Envoy;
  let dir: string;
  let port: number;
  let listenerTemplate: Bootstrap;

  /** Writes the listener (edited by `editListener`) with the shipped filter configuration edited by `edit`; Envoy picks it up on the move. */
  function publish(version: string, edit: (json: Bootstrap) => void, editListener: (l: Bootstrap) => void = () => {}): void {
    const listener = structuredClone(listenerTemplate);
    editListener(listener);
    const plugin = pluginConfigOf(listener).configuration;
    const json = JSON.parse(plugin.value);
    edit(json);
    plugin.value = JSON.stringify(json);
    const doc = { version_info: version, resources: [{ "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", ...listener }] };
    writeFileSync(join(dir, "next.yaml"), stringify(doc));
    renameSync(join(dir, "next.yaml"), join(dir, "lds.yaml"));
  }

  async function waitForListenerVersion(count: number): Promise<void> {
    await envoy.waitForStat("listener_manager.lds.update_success", (v) => (v ?? 0) >= count, 10_000);
    await envoy.waitForStat("listener_manager.total_listeners_warming", (v) => v === 0, 10_000);
  }

  before(async () => {
    stable = await startUpstream({ name: "stable" });
    canary = await startUpstream({ name: "canary" });
    dir = mkdtempSync(join(tmpdir(), "traffic-split-lds-"));
    [port] = await freePorts(1);
    envoy = await startEnvoy({
      config: CONFIG, clusters: { stable, canary }, concurrency: 2, mode: "process",
      mutate: (cfg) => {
        const listener = cfg.static_resources.listeners.pop();
        listener.address = { socket_address: { address: "127.0.0.1", port_value: port } };
        pluginConfigOf(listener).vm_config.code.local.filename = resolve(projectRoot, WASM["traffic-split"]);
        listenerTemplate = listener;
        cfg.node = { id: "traffic-split-test", cluster: "traffic-split-test" };
        cfg.dynamic_resources = { lds_config: { resource_api_version: "V3", path_config_source: { path: join(dir, "lds.yaml") } } };
        publish("1", () => {});
      },
    });
    await waitForListenerVersion(1);
  });
  after(async () => {
    await envoy?.stop();
    await stable?.close();
    await canary?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** How many of `n` users, each on a new connection (old connections keep the filter chain they started with), reach the canary. */
  const onCanary = async (n: number, prefix: string) => {
    const answers = await batched(n, 10, (i) => rawGet(port, [`x-user-id: ${prefix}-${i}`]));
    assert.ok(answers.every((a) => a.upstream !== ""), "every request reached an upstream");
    return answers.filter((a) => a.upstream === "canary").length;
  };

  test("a rollback survives re-applying the same configuration, and a new configuration starts fresh", async () => {
    canary.script({ name: "canary", status: 503 });
    await onCanary(200, "fail"); // 30% of 200 at 100% 503: rolled back at the next sync
    await envoy.waitForLog(/rolled back subset "canary"/, { timeoutMs: 5000 });
    // Users the split sent to the canary: a worker that has not adopted the rollback sends them there again (sticky).
    const canaryUsers = [...new Set(canary.requests.map((r) => String(r.headers["x-user-id"])))];
    assert.ok(canaryUsers.length >= 8, `${canaryUsers.length} users reached the canary before the rollback`);
    await waitOnBothWorkers(envoy, port, "stop routing to the rolled-back canary", (i) => [`x-user-id: ${canaryUsers[i % canaryUsers.length]}`], (a) => a.upstream === "stable");
    assert.equal(await onCanary(200, "after"), 0);

    // The listener rebuilt around the same filter configuration bytes: the rollback holds.
    publish("2", () => {}, (l) => (l.filter_chains[0].filters[0].typed_config.stat_prefix = "ingress_v2"));
    await waitForListenerVersion(2);
    await envoy.waitForStat("http.ingress_v2.downstream_rq_total", (v) => v !== undefined, 5000);
    assert.equal(await onCanary(200, "same"), 0, "the same configuration is still rolled back");
    assert.ok((await envoy.stat("http.ingress_v2.downstream_rq_total"))! >= 200, "served by the rebuilt listener");

    // A new canary revision: a new plugin configuration, a fresh shared state at its configured 30%.
    canary.script({ name: "canary", status: 200 });
    publish("3", (json) => (json.revision = "canary-v3"), (l) => (l.filter_chains[0].filters[0].typed_config.stat_prefix = "ingress_v3"));
    await waitForListenerVersion(3);
    await envoy.waitForStat("http.ingress_v3.downstream_rq_total", (v) => v !== undefined, 5000);
    // The new revision starts from a fresh state at 30%: wait until fresh connections reach its canary again.
    await waitFor("the new revision to route users to the canary", async () => {
      const answers = await batched(10, 10, (i) => rawGet(port, [`x-user-id: probe-v3-${Date.now()}-${i}`]));
      return answers.some((a) => a.upstream === "canary") ? true : notYet(answers.map((a) => a.upstream));
    });
    const routedBefore = (await envoy.stat(series("canary", "requests_total"))) ?? 0;
    const fresh = await onCanary(300, "v3");
    assert.ok(fresh > 45 && fresh < 135, `${fresh} of 300 on the new canary revision`);
    // Every worker has synced since (counters are flushed on the sync): the replaced configuration's roots, still
    // running while its listener drains, have ticked too and must not have written their rolled-back weights.
    await envoy.waitForStat(series("canary", "requests_total"), routedBefore + fresh, 5000);
    const stats = await envoy.stats("resilience_traffic_split_weight_percent");
    assert.equal(stats[series("canary", "weight_percent")], 30, "the gauge shows the newest configuration's weight");
    assert.equal(stats[series("stable", "weight_percent")], 70);
  });
});
