// The harness itself, against a real Envoy in every mode envoyModes() offers (no Wasm involved):
// envoy-configs/harness-smoke.yaml at --concurrency 2 in front of a scripted upstream.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  closeHttp,
  containerExists,
  envoyModes,
  parsePrometheus,
  request,
  rewriteBootstrap,
  seriesValue,
  startEnvoy,
  startEnvoyExpectFailure,
  startUpstream,
  type Envoy,
  type EnvoyMode,
  type Upstream,
} from "../harness/index.js";

const SMOKE = "envoy-configs/harness-smoke.yaml";

after(closeHttp);

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function assertGone(envoy: Envoy): Promise<void> {
  if (envoy.pid !== undefined) assert.equal(processAlive(envoy.pid), false, `Envoy pid ${envoy.pid} still runs`);
  if (envoy.containerId !== undefined) assert.equal(await containerExists(envoy.containerId), false, "container still exists");
  assert.equal(existsSync(envoy.configPath), false, "temp config left behind");
}

for (const mode of await envoyModes()) {
  describe(`The harness in ${mode} mode`, () => {
    let upstream: Upstream;
    let envoy: Envoy;

    before(async () => {
      upstream = await startUpstream({ name: "smoke" });
      envoy = await startEnvoy({ config: SMOKE, clusters: { upstream }, concurrency: 2, mode }).catch(async (e) => {
        await upstream.close();
        throw e;
      });
    });
    after(async () => {
      await envoy?.stop();
      await upstream?.close();
    });
    beforeEach(() => upstream.script({ name: "smoke" }));

    test("Envoy runs in the requested mode with two workers", async () => {
      assert.equal(envoy.mode, mode);
      assert.equal(mode === "process" ? envoy.pid !== undefined : envoy.containerId !== undefined, true);
      assert.equal(await envoy.stat("server.concurrency"), 2);
      assert.equal((await request(`${envoy.adminUrl}/ready`)).body.trim(), "LIVE");
    });

    test("A request reaches the upstream, which echoes the headers Envoy sent", async () => {
      const res = await request(`${envoy.url()}/echo?q=1`, { headers: { "x-probe": "harness" } });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-upstream-name"], "smoke");
      const echo = res.json<{ url: string; headers: Record<string, string> }>();
      assert.equal(echo.url, "/echo?q=1");
      assert.equal(echo.headers["x-probe"], "harness");
      assert.match(echo.headers["x-request-id"], /^[0-9a-f-]{36}$/, "Envoy adds x-request-id");
      assert.deepEqual(upstream.hits, { total: 1, byPath: { "/echo": 1 }, byStatus: { "200": 1 } });
      assert.equal(upstream.requests[0].headers["x-probe"], "harness");
    });

    test("Without retries the client sees the status sequence one request at a time", async () => {
      upstream.script({ statuses: [500, 404, 201] });
      const seen = [];
      for (let i = 0; i < 4; i++) seen.push((await request(`${envoy.url()}/plain`)).status);
      assert.deepEqual(seen, [500, 404, 201, 200]);
    });

    test("On the retrying route 503, 503, 200 is one 200 after three attempts", async () => {
      const before = (await envoy.stat("cluster.upstream.upstream_rq_retry")) ?? 0;
      upstream.script({ statuses: [503, 503, 200] });
      const res = await request(`${envoy.url()}/retry/x`);
      assert.equal(res.status, 200);
      assert.equal(res.json<{ index: number }>().index, 2);
      assert.deepEqual(upstream.hits.byStatus, { "503": 2, "200": 1 });
      assert.equal(await envoy.stat("cluster.upstream.upstream_rq_retry"), before + 2);
    });

    test("An upstream reset reaches the client as a 503", async () => {
      upstream.script({ respond: () => ({ reset: true }) });
      const res = await request(`${envoy.url()}/plain`);
      assert.equal(res.status, 503);
      assert.match(res.body, /reset/);
      assert.equal(upstream.hits.byStatus.reset, 1);
    });

    test("Resets on the retrying route are retried until the script answers", async () => {
      upstream.script({ respond: (_req, i) => (i < 2 ? { reset: true } : { status: 200, body: "third time" }) });
      const res = await request(`${envoy.url()}/retry/y`);
      assert.equal(res.status, 200);
      assert.equal(res.body, "third time");
      assert.equal(upstream.hits.total, 3);
    });

    test("Upstream latency beyond the route timeout gives a 504 after about the timeout", async () => {
      upstream.script({ latencyMs: 1_500 });
      const t0 = performance.now();
      const res = await request(`${envoy.url()}/slow/z`);
      const ms = performance.now() - t0;
      assert.equal(res.status, 504);
      assert.ok(ms >= 450 && ms < 1_400, `504 after ${ms.toFixed(0)} ms, route timeout is 500 ms`);
    });

    test("Latency under the timeout is added to the answer", async () => {
      upstream.script({ latencyMs: 200 });
      const t0 = performance.now();
      const res = await request(`${envoy.url()}/plain`);
      assert.equal(res.status, 200);
      assert.ok(performance.now() - t0 >= 190);
    });

    test("The second listener reaches the first through the loop-back cluster", async () => {
      const res = await request(`${envoy.url("egress")}/via-egress`);
      assert.equal(res.status, 200);
      assert.equal(res.json<{ url: string }>().url, "/via-egress");
      assert.notEqual(envoy.port("egress"), envoy.port("ingress"));
      assert.throws(() => envoy.url("nope"), /no listener named "nope" \(listeners: ingress, egress\)/);
    });

    test("Stats agree across JSON, single reads and Prometheus series", async () => {
      upstream.script({ statuses: [200, 503, 200] });
      const base = (await envoy.stat("cluster.upstream.upstream_rq_503")) ?? 0;
      for (let i = 0; i < 3; i++) await request(`${envoy.url()}/count`);
      const stats = await envoy.stats("^cluster\\.upstream\\.");
      assert.equal(stats["cluster.upstream.upstream_rq_503"], base + 1);
      assert.equal(await envoy.stat("cluster.upstream.upstream_rq_503"), base + 1);
      assert.equal(await envoy.stat("no.such.stat"), undefined);
      const series = await envoy.promSeries();
      const total = seriesValue(series, "envoy_cluster_upstream_rq_total", { envoy_cluster_name: "upstream" });
      assert.equal(total, stats["cluster.upstream.upstream_rq_total"]);
      assert.match(await envoy.prometheus(), /^# TYPE envoy_cluster_upstream_rq_total counter$/m);
      assert.ok(envoy.logs().includes("starting main dispatch loop"));
    });

    test("Condition waits resolve with the value reached and time out naming what they awaited and the last value", async () => {
      const base = (await envoy.stat("cluster.upstream.upstream_rq_total")) ?? 0;
      const since = envoy.logOffset();
      await Promise.all([0, 1, 2].map(() => request(`${envoy.url()}/waits`)));
      assert.equal(await upstream.waitForHits(3, { path: "/waits", timeoutMs: 5_000 }), 3);
      assert.ok((await envoy.waitForStat("cluster.upstream.upstream_rq_total", base + 3))! >= base + 3);
      const series = await envoy.waitForSeries("envoy_cluster_upstream_rq_total", { envoy_cluster_name: "upstream" }, base + 3);
      assert.ok(series! >= base + 3);
      await assert.rejects(envoy.waitForStat("cluster.upstream.upstream_rq_total", base + 1_000, { timeoutMs: 300 }),
        new RegExp(`waiting for stat cluster\\.upstream\\.upstream_rq_total \\(>= ${base + 1_000}\\); last seen: \\d+`));
      await assert.rejects(envoy.waitForSeries("envoy_cluster_upstream_rq_total", { envoy_cluster_name: "nope" }, 1, { timeoutMs: 300 }),
        /waiting for series envoy_cluster_upstream_rq_total\{"envoy_cluster_name":"nope"\} \(>= 1\); last seen: undefined/);
      await assert.rejects(upstream.waitForHits(4, { path: "/waits", timeoutMs: 300 }), /waiting for 4 hits on upstream smoke path \/waits \(>= 4\); last seen: 3$/);
      await assert.rejects(envoy.waitForLog("no such line", { since, timeoutMs: 300 }), /a log line matching no such line; last lines:/);
    });
  });

  describe(`Starting and stopping in ${mode} mode`, () => {
    test("A malformed bootstrap is refused with a log that names the problem", async () => {
      const failure = await startEnvoyExpectFailure({
        config: SMOKE,
        mode,
        mutate: (cfg) => (cfg.static_resources.listeners[0].bogus_field = 1),
      });
      assert.notEqual(failure.exitCode, 0);
      assert.match(failure.log, /bogus_field/);
    });

    test("startEnvoy on a refused bootstrap throws with the log tail", async () => {
      await assert.rejects(
        startEnvoy({ config: SMOKE, mode, mutate: (cfg) => (cfg.static_resources.clusters[0].type = "NOT_A_TYPE") }),
        (e: Error) => /exited with status [1-9]\d* before it was ready/.test(e.message) && /NOT_A_TYPE/.test(e.message),
      );
    });

    test("startEnvoyExpectFailure throws when Envoy accepts the config", async () => {
      const up = await startUpstream();
      try {
        await assert.rejects(startEnvoyExpectFailure({ config: SMOKE, mode, clusters: { upstream: up } }), /became LIVE; expected it to refuse/);
      } finally {
        await up.close();
      }
    });

    test("Two Envoys run side by side and stop leaves nothing behind", async () => {
      const up = await startUpstream();
      const envoys: Envoy[] = [];
      try {
        const started = await Promise.allSettled([1, 2].map(() => startEnvoy({ config: SMOKE, mode, concurrency: 1, clusters: { upstream: up } })));
        for (const r of started) if (r.status === "fulfilled") envoys.push(r.value);
        for (const r of started) if (r.status === "rejected") throw r.reason;
        for (const e of envoys) assert.equal((await request(`${e.url()}/both`)).status, 200);
        assert.equal(up.hits.total, 2);
      } finally {
        await Promise.all(envoys.map((e) => e.stop()));
        await up.close();
      }
      for (const e of envoys) await assertGone(e);
      await envoys[0].stop(); // idempotent
    });
  });
}

describe("Harness pieces that need no Envoy", () => {
  test("Bad options are refused with errors that name them", async () => {
    const mode: EnvoyMode = "process";
    await assert.rejects(startEnvoy({ config: "envoy-configs/nope.yaml", mode }), /Envoy config envoy-configs\/nope.yaml does not exist/);
    await assert.rejects(startEnvoy({ config: SMOKE, mode, clusters: { upstrem: 1234 } }), /no static cluster named "upstrem".*upstream, ingress_loop/);
    await assert.rejects(startEnvoy({ config: SMOKE, mode, wasm: { "service-metrics": "x.wasm" } }), /no vm_config.code.local.filename in the config ends in service-metrics.wasm/);
    await assert.rejects(startEnvoy({ config: SMOKE, mode, concurrency: 0 }), /concurrency must be an integer >= 1/);
    await assert.rejects(startUpstream({ failureRate: 2 }), /failureRate must be within 0..1/);
  });

  test("Wasm file names are matched by module name and placed for host or container", () => {
    const dir = mkdtempSync(join(tmpdir(), "harness-test-"));
    try {
      const wasmFile = join(dir, "built.wasm");
      writeFileSync(wasmFile, "\0asm");
      const cfg = () => ({
        static_resources: {
          listeners: [{ name: "l", address: { socket_address: { address: "0.0.0.0", port_value: 10000 } }, filter_chains: [
            { filters: [{ typed_config: { config: { vm_config: { code: { local: { filename: "build/service-metrics.wasm" } } } } } }] },
          ] }],
          clusters: [{ name: "c", load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 8080 } } } }] }] } }],
        },
      });
      const host = rewriteBootstrap(cfg(), { target: "host", wasm: { "service-metrics": wasmFile }, clusters: { c: [{ port: 7001 }, 7002] } }, [5001, 5002]);
      assert.equal(host.adminPort, 5001);
      assert.deepEqual(host.listeners, [{ name: "l", port: 5002 }]);
      assert.equal(host.config.static_resources.listeners[0].address.socket_address.address, "127.0.0.1");
      assert.equal(host.config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.config.vm_config.code.local.filename, wasmFile);
      const eps = host.config.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints;
      assert.deepEqual(eps.map((e: { endpoint: { address: { socket_address: { port_value: number } } } }) => e.endpoint.address.socket_address.port_value), [7001, 7002]);
      assert.deepEqual(host.files, []);

      const ctr = rewriteBootstrap(cfg(), { target: "container", wasm: { "service-metrics": wasmFile } }, [5001, 5002]);
      assert.equal(ctr.config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.config.vm_config.code.local.filename, "/etc/envoy/built.wasm");
      assert.deepEqual(ctr.files, [{ source: wasmFile, target: "/etc/envoy/built.wasm" }]);

      assert.throws(() => rewriteBootstrap(cfg(), { target: "host", wasm: { other: wasmFile } }, [1, 2]), /wasm\["other"\]: no vm_config.code.local.filename in the config ends in other.wasm/);
      assert.throws(() => rewriteBootstrap(cfg(), { target: "host", wasm: { "service-metrics": join(dir, "gone.wasm") } }, [1, 2]), /wasm\["service-metrics"\]: Wasm file .*gone.wasm does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Prometheus text parses into series with labels, escapes and special values", () => {
    const series = parsePrometheus(
      [
        "# TYPE a counter",
        'a{x="1",y="q\\"uote"} 3',
        "b 4.5 1700000000",
        'c_bucket{le="+Inf"} +Inf',
        "",
      ].join("\n"),
    );
    assert.deepEqual(series[0], { name: "a", labels: { x: "1", y: 'q"uote' }, value: 3 });
    assert.deepEqual(series[1], { name: "b", labels: {}, value: 4.5 });
    assert.equal(series[2].value, Infinity);
    assert.equal(seriesValue(series, "a", { x: "1" }), 3);
    assert.equal(seriesValue(series, "zzz"), undefined);
    assert.throws(() => parsePrometheus("a{x=1} 2"), /malformed label/);
  });

  test("A seeded failure rate repeats exactly and fails about that share of hits", async () => {
    const runs: number[][] = [];
    for (let r = 0; r < 2; r++) {
      const up = await startUpstream({ failureRate: 0.3, seed: 42 });
      const statuses = [];
      for (let i = 0; i < 60; i++) statuses.push((await request(`${up.url}/f`)).status);
      await up.close();
      runs.push(statuses);
    }
    assert.deepEqual(runs[0], runs[1]);
    const failed = runs[0].filter((s) => s === 503).length;
    assert.ok(failed >= 8 && failed <= 30, `${failed} of 60 failed at rate 0.3`);
    assert.ok(runs[0].every((s) => s === 503 || s === 200));
  });
});
