// The deployable configs in real Envoys: client -> gateway-mtls.yaml -> (mTLS) service A's sidecar
// (sidecar-mtls-permissive.yaml) -> app A -> A's outbound -> (mTLS) service B's sidecar (sidecar-mtls-strict.yaml) -> app B. Certificates from
// build/certs.sh in a temporary folder. Also: strict refuses plaintext and foreign-CA clients, permissive accepts
// plaintext and labels both kinds, a certificate rotation without restart, the gateway's edge settings, a spent
// deadline and an open breaker in the access log.
// Both modes: the certificate folder is bind-mounted at the same path into each container, so a rotation on the host
// reaches Envoy's SDS folder watch as it does in process mode.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  closeHttp, envoyBinaryVersion, envoyModes, notYet, request, resolveEnvoyBinary, seriesValue, startEnvoy, startUpstream, waitFor,
  type Envoy, type Upstream,
} from "../harness/index.js";
import { accessLog, AppA, certs, Collector, Jaeger, clientCert, linesOf, presentedCertificate, tlsGet, useCertsOf, type ClientCert } from "./deploy-helpers.js";

const WASM = { resilience: "build/resilience.wasm" };
/** Trace tags from a format string (details, attempts, the caller's budget) exist from Envoy 1.37 on; before, the harness leaves them out. */
const FORMAT_TAGS = Number(envoyBinaryVersion(resolveEnvoyBinary()).split(".")[1]) >= 37;
/** Access-log lines reach stdout within this flush interval. */
const FLUSH = ["--file-flush-interval-msec", "50"];
const SPIFFE = "spiffe://cluster.local/ns/default/sa/";

after(closeHttp);

for (const mode of await envoyModes()) {
  describe(`deployable configs (gateway, mTLS sidecars) in ${mode} mode`, () => {
    let dir: string;
    let appA: AppA;
    let collector: Collector;
    let appB: Upstream;
    let canaryA: Upstream;
    let sidecarB: Envoy;
    let permissiveB: Envoy;
    let sidecarA: Envoy;
    let gateway: Envoy;
    let asA: ClientCert;
    let foreign: ClientCert;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "deploy-certs-"));
      certs(dir);
      asA = clientCert(dir, "service-a");
      foreign = clientCert(dir, "foreign");
      appA = await AppA.start();
      collector = await Collector.start();
      appB = await startUpstream({ name: "app-b" });
      canaryA = await startUpstream({ name: "canary-a" });
      const sidecar = { wasm: WASM, mode, args: FLUSH, mounts: [dir] };
      const zipkin = { zipkin: collector };
      sidecarB = await startEnvoy({
        ...sidecar, config: "envoy-configs/sidecar-mtls-strict.yaml", mutate: useCertsOf(dir, "service-b"), clusters: { app: appB, ...zipkin },
      });
      permissiveB = await startEnvoy({
        ...sidecar, config: "envoy-configs/sidecar-mtls-permissive.yaml", mutate: useCertsOf(dir, "service-b"), clusters: { app: appB, ...zipkin },
      });
      sidecarA = await startEnvoy({
        ...sidecar, config: "envoy-configs/sidecar-mtls-permissive.yaml", mutate: useCertsOf(dir, "service-a"),
        clusters: { app: appA, "service-b": sidecarB.port("inbound"), "service-b-canary": sidecarB.port("inbound"), ...zipkin },
      });
      appA.outboundPort = sidecarA.port("outbound");
      gateway = await startEnvoy({
        ...sidecar, config: "envoy-configs/gateway-mtls.yaml", mutate: useCertsOf(dir, "gateway"),
        clusters: { "service-a": sidecarA.port("inbound"), "service-a-canary": canaryA, ...zipkin },
      });
    });
    after(async () => {
      for (const e of [gateway, sidecarA, permissiveB, sidecarB]) await e?.stop();
      await appA?.close();
      await appB?.close();
      await canaryA?.close();
      await collector?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    beforeEach(() => {
      appA.received.length = 0;
      appA.workMs = 0;
      appA.failWith = 0;
      appB.clear();
      canaryA.clear();
    });

    /** The x-request-id the gateway gave the last request app A received. */
    const lastRequestId = () => String(appA.received.at(-1)?.["x-request-id"]);

    /** Waits for the access-log line of `id` on the listener at `port` of `envoy`. */
    const lineOf = (envoy: Envoy, id: string, port: number) =>
      waitFor(`access-log line of ${id} on :${port}`, () => linesOf(envoy, id, port)[0] ?? notYet(envoy.logs().slice(-500)));

    test("gateway -> sidecar A -> app A -> A outbound -> sidecar B over mTLS -> app B succeeds, every hop logged", async () => {
      const res = await request(`${gateway.url()}/orders`, { headers: { "x-user-id": "u1" } });
      assert.equal(res.status, 200, res.body);
      assert.equal(appB.hits.total, 1);
      const id = lastRequestId();
      assert.equal(appB.requests[0].headers["x-request-id"], id, "one request id end to end");

      const edge = await lineOf(gateway, id, gateway.port("edge"));
      assert.equal(edge.code, 200);
      assert.equal(edge.subset, "stable");
      const inA = await lineOf(sidecarA, id, sidecarA.port("inbound"));
      assert.match(String(inA.tls), /^TLSv1\.[23]$/, "the gateway reaches A over mTLS");
      assert.equal(inA.peer, `${SPIFFE}gateway`);
      assert.ok(Number(inA.caller_budget_ms) > 0 && Number(inA.caller_budget_ms) <= 1000, `caller budget ${inA.caller_budget_ms}`);
      const outA = await lineOf(sidecarA, id, sidecarA.port("outbound"));
      assert.equal(outA.code, 200);
      assert.equal(outA.attempts, 1);
      assert.equal(outA.cluster, "service-b");
      const inB = await lineOf(sidecarB, id, sidecarB.port("inbound"));
      assert.equal(inB.code, 200);
      assert.match(String(inB.tls), /^TLSv1\.[23]$/);
      assert.equal(inB.peer, `${SPIFFE}service-a`, "B sees A's SPIFFE identity");
    });

    test("one trace across the hops: W3C traceparent reaches app B, every Envoy's spans reach the collector", async () => {
      const res = await request(`${gateway.url()}/traced`);
      assert.equal(res.status, 200, res.body);
      const id = lastRequestId();
      const traceparent = String(appA.received.at(-1)?.traceparent);
      const traceId = /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/.exec(traceparent)?.[1];
      assert.ok(traceId, `app A got a W3C traceparent: ${traceparent}`);
      assert.equal(appB.requests[0].headers.traceparent?.slice(3, 35), traceId, "app B is in the same trace");
      assert.equal((await lineOf(sidecarB, id, sidecarB.port("inbound"))).traceparent?.slice(3, 35), traceId);
      // Zipkin's reporter flushes every 5 s (or every 5 spans): a wait on the spans, not a pause.
      const spans = await waitFor("spans of the trace from the gateway, A's inbound and outbound, and B", () => {
        const mine = collector.spans.filter((s) => s.traceId.padStart(32, "0") === traceId);
        return mine.length >= 4 ? mine : notYet(mine.map((s) => s.name));
      }, { timeoutMs: 15_000 });
      const hops = spans.map((s) => `${s.kind} ${new URL(s.tags?.["http.url"] ?? "http://x/").pathname} -> ${s.tags?.upstream_cluster}`).sort();
      assert.deepEqual(hops, [
        "CLIENT /b -> service-b", // A's outbound
        "SERVER /b -> app", // B's inbound
        "SERVER /traced -> app", // A's inbound
        "SERVER /traced -> service-a", // the gateway
      ]);
      assert.ok(spans.every((s) => s.tags?.subset === "stable"), "every span carries the subset the gateway chose");
      if (FORMAT_TAGS) {
        assert.ok(spans.every((s) => s.tags?.details === "via_upstream" && s.tags?.attempts === "1"), "who answered, in how many attempts");
        const inA = spans.find((s) => s.kind === "SERVER" && s.tags?.upstream_cluster === "app" && s.tags?.["http.url"]?.endsWith("/traced"));
        assert.ok(Number(inA?.tags?.caller_budget_ms) > 0, `A's inbound span carries the caller's budget: ${JSON.stringify(inA?.tags)}`);
      }
    });

    test("strict: a plaintext client and a foreign-CA client are refused at B's inbound; a mesh client is served", async () => {
      await assert.rejects(request(`${sidecarB.url("inbound")}/plain`, { timeoutMs: 5_000 }));
      await assert.rejects(tlsGet(sidecarB.port("inbound"), "/foreign", foreign));
      assert.equal(appB.hits.total, 0, "nothing reached app B");
      // Refused by the certificate check, and counted as such.
      await sidecarB.waitForStat(`listener.127.0.0.1_${sidecarB.port("inbound")}.ssl.fail_verify_error`, 1);
      const ok = await tlsGet(sidecarB.port("inbound"), "/mesh", asA);
      assert.equal(ok.status, 200);
      assert.equal(appB.hits.total, 1);
    });

    test("permissive: plaintext and mTLS both served and told apart in the access log and the stats", async () => {
      const port = permissiveB.port("inbound");
      const plain = await request(`${permissiveB.url("inbound")}/plain`, { headers: { "x-request-id": "perm-plain" } });
      assert.equal(plain.status, 200);
      const mtls = await tlsGet(port, "/mtls", asA, { "x-request-id": "perm-mtls" });
      assert.equal(mtls.status, 200);
      const p = await lineOf(permissiveB, "perm-plain", port);
      assert.equal(p.tls, null);
      assert.equal(p.peer, null);
      const m = await lineOf(permissiveB, "perm-mtls", port);
      assert.match(String(m.tls), /^TLSv1\.[23]$/);
      assert.equal(m.peer, `${SPIFFE}service-a`);
      assert.equal(await permissiveB.stat("http.inbound_plaintext.downstream_rq_total"), 1);
      assert.equal(await permissiveB.stat("http.inbound_mtls.downstream_rq_total"), 1);
      // A certificate from another CA gets no identity, even here: the handshake fails (see the README's mTLS notes).
      await assert.rejects(tlsGet(port, "/foreign", foreign));
      assert.equal(appB.hits.total, 2);
    });

    test("replacing B's certificate files changes the certificate B presents, without a restart, and traffic flows", async () => {
      const port = sidecarB.port("inbound");
      const before = await presentedCertificate(port, asA);
      assert.equal(before.san, `URI:${SPIFFE}service-b`);
      const serial = /serial=([0-9A-F]+)/.exec(certs(dir, "rotate", "service-b"))?.[1];
      assert.ok(serial && serial !== before.serial, `new serial ${serial}`);
      const now = await waitFor("B presenting the rotated certificate", async () => {
        const c = await presentedCertificate(port, asA);
        return c.serial.replace(/^0+/, "") === serial.replace(/^0+/, "") ? c : notYet(c.serial);
      });
      assert.equal(now.san, `URI:${SPIFFE}service-b`);
      const res = await request(`${gateway.url()}/after-rotation`);
      assert.equal(res.status, 200, res.body);
      assert.equal(appB.hits.total, 1);
    });

    test("a spent deadline: the client's 300 ms run out in app A, A's outbound answers 504 and logs the decision", async () => {
      appA.workMs = 500;
      const t0 = performance.now();
      const res = await request(`${gateway.url()}/slow`, { headers: { "x-resilience-deadline-ms": "300" } });
      const ms = performance.now() - t0;
      assert.equal(res.status, 504);
      assert.ok(ms < 900, `the gateway kept the client's shorter deadline, not the 1 s default (${ms.toFixed(0)} ms)`);
      const id = lastRequestId();
      const inA = await lineOf(sidecarA, id, sidecarA.port("inbound"));
      assert.ok(Number(inA.caller_budget_ms) > 0 && Number(inA.caller_budget_ms) <= 300, `caller budget ${inA.caller_budget_ms}`);
      const outA = await lineOf(sidecarA, id, sidecarA.port("outbound"));
      assert.equal(outA.code, 504);
      assert.equal(outA.details, "deadline_exceeded");
      assert.equal(outA.attempts, 0);
      assert.equal(appB.hits.total, 0);
      // The same decision on the trace: A's outbound span says who answered (the reporter flushes every 5 s).
      const span = await waitFor("A's outbound span of the spent request", () =>
        collector.spans.find((s) => s.tags?.["guid:x-request-id"] === id && s.kind === "CLIENT") ?? notYet(collector.spans.length), { timeoutMs: 15_000 });
      if (FORMAT_TAGS) {
        assert.equal(span.tags?.details, "deadline_exceeded");
        assert.equal(span.tags?.attempts, "0");
      }
    });

    test("edge: a client's x-envoy timeout, a long deadline and the routing header neither lengthen the bound nor pick the canary", async () => {
      appA.workMs = 1_500;
      const t0 = performance.now();
      const res = await request(`${gateway.url()}/edge`, {
        headers: { "x-envoy-upstream-rq-timeout-ms": "10000", "x-resilience-deadline-ms": "60000", "x-traffic-subset": "canary" },
      });
      const ms = performance.now() - t0;
      assert.equal(res.status, 504);
      assert.ok(ms >= 900 && ms < 1_450, `the 1 s SLA default bounded it (${ms.toFixed(0)} ms)`);
      appA.workMs = 0;
      for (let i = 0; i < 10; i++) {
        const r = await request(`${gateway.url()}/pick`, { headers: { "x-traffic-subset": "canary", "x-user-id": `u${i}` } });
        assert.equal(r.status, 200);
      }
      assert.equal(canaryA.hits.total, 0, "no client picked the canary");
      const picks = await waitFor("the gateway's 10 log lines of /pick", () => {
        const l = accessLog(gateway).filter((x) => x.path === "/pick");
        return l.length === 10 ? l : notYet(l.length);
      });
      assert.deepEqual(picks.map((l) => l.subset), Array(10).fill("stable"), "the split replaced the client's routing header");
      assert.ok(appA.received.every((h) => h["x-envoy-upstream-rq-timeout-ms"] === undefined));
    });

    // Last: it leaves service A's breaker open at the gateway.
    test("a failing service A: the gateway's breaker opens, answers fast, logs why and keeps its state header inside", async () => {
      appA.failWith = 503;
      const opened = await waitFor("the gateway's breaker answering", async () => {
        const r = await request(`${gateway.url()}/failing`);
        assert.equal(r.status, 503);
        return r.body.includes("app A failing") ? notYet(r.status) : r;
      }, { timeoutMs: 20_000 });
      assert.equal(opened.headers["x-breaker-state"], undefined, "the state header stays inside");
      const line = await waitFor("the breaker's access-log line", () =>
        accessLog(gateway).find((l) => l.details === "outlier_breaker_open") ?? notYet(gateway.logs().slice(-500)));
      assert.equal(line.code, 503);
      assert.equal(line.attempts, 0);
      assert.equal(line.cluster, "service-a");
    });
  });
}

for (const mode of await envoyModes()) {
  describe(`sidecar.yaml (plaintext) in ${mode} mode`, () => {
    let serviceB: Upstream;
    let app: Upstream;
    let sidecar: Envoy;

    before(async () => {
      serviceB = await startUpstream({ name: "service-b" });
      app = await startUpstream({ name: "app", latencyMs: 300 });
      sidecar = await startEnvoy({
        config: "envoy-configs/sidecar.yaml", wasm: WASM, mode, args: FLUSH,
        clusters: { app, "service-b": serviceB, "service-b-canary": serviceB },
        // service-b stands for a peer sidecar (HTTP/2); the scripted one speaks HTTP/1.1.
        mutate: (cfg) => {
          for (const c of cfg.static_resources.clusters) if (c.name.startsWith("service-b")) delete c.typed_extension_protocol_options;
        },
      });
    });
    after(async () => {
      await sidecar?.stop();
      await app?.close();
      await serviceB?.close();
    });

    test("outbound: a 503 is retried because the budget grants it, with the route's back-off, and logged with 2 attempts", async () => {
      // A destination's budget starts with the first request to it and holds retries from its first sync on.
      assert.equal((await request(`${sidecar.url("outbound")}/`, { headers: { host: "service-b" } })).status, 200);
      await waitFor("service-b's budget holding a retry", async () => {
        const v = seriesValue(await sidecar.promSeries(), "resilience_retry_budget_available_retries", { destination_service: "service-b" });
        return (v ?? 0) >= 1 ? v : notYet(v);
      });
      serviceB.clear();
      serviceB.script({ statuses: [503, 200] });
      const res = await request(`${sidecar.url("outbound")}/`, { headers: { host: "service-b", "x-request-id": "sc-retry" } });
      assert.equal(res.status, 200);
      assert.equal(serviceB.hits.total, 2);
      const line = await waitFor("the outbound log line", () => linesOf(sidecar, "sc-retry", sidecar.port("outbound"))[0] ?? notYet());
      assert.equal(line.attempts, 2);
      assert.equal(line.code, 200);
      assert.equal(line.subset, "stable");
      assert.equal(line.retries_granted, null, "a full grant publishes nothing");
    });

    test("outbound: a request the budget gave fewer retries than wanted says so in its log line (granted/wanted)", async () => {
      // Each request's first attempt fails and one retry succeeds, so the breaker sees successes while the retries
      // drain the budget's 10 a second; the router consumes x-envoy-max-retries, so the denial is the filter's word.
      let n = 0;
      const denied = await waitFor("a log line with the budget's denial", async () => {
        const id = `sc-drain-${n++}`;
        serviceB.script({ statuses: [503, 200] });
        await request(`${sidecar.url("outbound")}/`, { headers: { host: "service-b", "x-request-id": id } });
        const line = await waitFor(`log line ${id}`, () => linesOf(sidecar, id, sidecar.port("outbound"))[0] ?? notYet());
        return line.retries_granted !== null ? line : notYet(`${n} requests, attempts ${line.attempts}`);
      }, { timeoutMs: 20_000 });
      assert.match(String(denied.retries_granted), /^[01]\/2$/, "fewer than the 2 wanted");
      const granted = Number(String(denied.retries_granted)[0]);
      assert.equal(denied.attempts, granted + 1, "the router retried only what was granted");
      assert.equal(denied.code, granted === 0 ? 503 : 200);
      serviceB.script({});
    });

    test("inbound: a caller's 100 ms budget bounds the local app (300 ms) and is logged as the caller's", async () => {
      const res = await request(`${sidecar.url("inbound")}/`, { headers: { "x-resilience-deadline-ms": "100", "x-request-id": "sc-budget" } });
      assert.equal(res.status, 504);
      const line = await waitFor("the inbound log line", () => linesOf(sidecar, "sc-budget", sidecar.port("inbound"))[0] ?? notYet());
      assert.equal(line.flags, "UT");
      assert.ok(Number(line.caller_budget_ms) > 0 && Number(line.caller_budget_ms) <= 100, `caller budget ${line.caller_budget_ms}`);
    });

    // Last: it leaves service-b's breaker open.
    test("outbound: a failing service-b opens the breaker; its refusals are logged with the breaker's state and no attempt", async () => {
      serviceB.script({ status: 503 });
      let n = 0;
      const refused = await waitFor("the breaker's refusal in the outbound log", async () => {
        const id = `sc-open-${n++}`;
        await request(`${sidecar.url("outbound")}/`, { headers: { host: "service-b", "x-request-id": id } });
        const line = await waitFor(`log line ${id}`, () => linesOf(sidecar, id, sidecar.port("outbound"))[0] ?? notYet());
        return line.details === "outlier_breaker_open" ? line : notYet(line.details);
      }, { timeoutMs: 20_000 });
      assert.equal(refused.code, 503);
      assert.equal(refused.attempts, 0);
      assert.equal(refused.breaker, "open", "inside the mesh the breaker's state header is kept and logged");
    });
  });
}

// Optional: the same trace in a real Jaeger (JAEGER_BIN=<jaeger-all-in-one>, built as the README's Deploy section says).
for (const mode of await envoyModes()) {
  const skip = !process.env.JAEGER_BIN ? "set JAEGER_BIN to a jaeger-all-in-one binary" : false;
  describe(`traces in a real Jaeger in ${mode} mode`, { skip }, () => {
    let jaeger: Jaeger;
    let appA: AppA;
    let appB: Upstream;
    const envoys: Envoy[] = [];

    before(async () => {
      jaeger = await Jaeger.start(process.env.JAEGER_BIN!);
      appA = await AppA.start();
      appB = await startUpstream({ name: "app-b" });
      const zipkin = { zipkin: jaeger.zipkinPort };
      const start = async (config: string, node: string, clusters: Record<string, number | Upstream | AppA>) => {
        const e = await startEnvoy({ config, wasm: WASM, mode, args: [...FLUSH, "--service-cluster", node, "--service-node", node], clusters: { ...clusters, ...zipkin } });
        envoys.push(e);
        return e;
      };
      const b = await start("envoy-configs/sidecar.yaml", "service-b", { app: appB });
      const a = await start("envoy-configs/sidecar.yaml", "service-a", { app: appA, "service-b": b.port("inbound"), "service-b-canary": b.port("inbound") });
      appA.outboundPort = a.port("outbound");
      await start("envoy-configs/gateway.yaml", "gateway", { "service-a": a.port("inbound"), "service-a-canary": a.port("inbound") });
    });
    after(async () => {
      for (const e of envoys.reverse()) await e.stop();
      await appA?.close();
      await appB?.close();
      await jaeger?.stop();
    });

    test("Jaeger holds one trace with a span from the gateway and from each sidecar's listeners", async () => {
      const gateway = envoys[2];
      const res = await request(`${gateway.url()}/jaeger`);
      assert.equal(res.status, 200, res.body);
      const traceId = /^00-([0-9a-f]{32})-/.exec(String(appA.received.at(-1)?.traceparent))?.[1];
      assert.ok(traceId);
      // Envoy's Zipkin reporter flushes every 5 s: a wait on the trace, not a pause.
      const trace = await waitFor("the trace in Jaeger with 4 spans", async () => {
        const r = await jaeger.query(`/api/traces/${traceId}`);
        const data = r.status === 200 ? JSON.parse(r.body).data?.[0] : undefined;
        return data?.spans?.length >= 4 ? data : notYet(r.status);
      }, { timeoutMs: 20_000 });
      const services = Object.values(trace.processes as Record<string, { serviceName: string }>).map((p) => p.serviceName).sort();
      assert.deepEqual([...new Set(services)], ["gateway", "service-a", "service-b"]);
    });
  });
}
