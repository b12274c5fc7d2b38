// deadline's trust model in real Envoys (every mode envoyModes() offers): a caller can shorten, never extend, the
// bound its route or the filter's configuration gives (route timeout 1 s, upstream 3 s); the smallest budget of all
// sources wins; the cross-hop table keeps a request's deadline through a duplicate id and through the caller's own
// HTTP/2 reset, so the app's outbound call still gets it.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { connect } from "node:http2";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  atLeast, closeHttp, envoyModes, request, startEnvoy, startUpstream, waitUntil, type Bootstrap, type Envoy, type Upstream,
} from "../harness/index.js";

const SIDECAR_A = "envoy-configs/deadline.yaml";
const WASM = { deadline: "build/deadline.wasm" };
const H = "x-resilience-deadline-ms";
/** The route's whole-request timeout on the "bound" listeners, and the slow upstream's latency. */
const ROUTE_MS = 1_000;
const UPSTREAM_MS = 3_000;

after(closeHttp);

/** The HCM of the listener named `name`. */
function hcmOf(cfg: Bootstrap, name: string): Bootstrap {
  const l = cfg.static_resources.listeners.find((x: Bootstrap) => x.name === name);
  if (!l) throw new Error(`no listener ${name}`);
  return l.filter_chains[0].filters[0].typed_config;
}

/** A copy of the inbound listener on `port` with its own plugin config, routing everything to `slow` with a 1 s timeout. */
function addBoundListener(cfg: Bootstrap, name: string, port: number, plugin: object): void {
  const copy = structuredClone(cfg.static_resources.listeners.find((x: Bootstrap) => x.name === "inbound"));
  copy.name = name;
  copy.address.socket_address.port_value = port;
  cfg.static_resources.listeners.push(copy);
  const hcm = hcmOf(cfg, name);
  hcm.stat_prefix = name;
  hcm.route_config.virtual_hosts[0].routes = [{ match: { prefix: "/" }, route: { cluster: "slow", timeout: `${ROUTE_MS / 1000}s` } }];
  hcm.http_filters[0].typed_config.config.name = `deadline-${name}`;
  hcm.http_filters[0].typed_config.config.configuration.value = JSON.stringify(plugin);
  // What the stage published for the outcome classifier, per request (filter state set through proxy_set_property).
  hcm.access_log = [{
    name: "envoy.access_loggers.stderr",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
      log_format: { text_format_source: { inline_string: `caller-budget ${name} tag=%REQ(X-TEST-TAG)% budget=%FILTER_STATE(wasm.resilience_caller_budget_ms:PLAIN)% flags=%RESPONSE_FLAGS%\n` } },
    },
  }];
}

function topology(cfg: Bootstrap): void {
  const app = cfg.static_resources.clusters.find((c: Bootstrap) => c.name === "app");
  cfg.static_resources.clusters.push({ ...structuredClone(app), name: "slow", load_assignment: { ...structuredClone(app.load_assignment), cluster_name: "slow" } });
  // service-b is app B itself here (HTTP/1.1), not B's sidecar.
  delete cfg.static_resources.clusters.find((c: Bootstrap) => c.name === "service-b").typed_extension_protocol_options;
  addBoundListener(cfg, "bound", 10103, {});
  addBoundListener(cfg, "bound-default", 10104, { defaultMs: 500 });
  addBoundListener(cfg, "bound-trust", 10105, { incoming: "trust" });
}

/** App A: holds each request until the test lets it go (or answers at once), then calls out with only x-request-id. */
class HeldApp {
  readonly received: IncomingHttpHeaders[] = [];
  private readonly gates = new Map<string, () => void>();
  outboundUrl = "";
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(): Promise<HeldApp> {
    let self: HeldApp | undefined;
    const server = createServer((req, res) => {
      const app = self!;
      app.received.push(req.headers);
      const tag = String(req.headers["x-test-tag"] ?? "");
      const go = async () => {
        const r = await request(`${app.outboundUrl}/b`, { headers: { "x-request-id": String(req.headers["x-request-id"]), "x-test-tag": tag } });
        if (!res.destroyed) res.writeHead(r.status).end(r.body);
      };
      if (req.headers["x-test-answer"] === "now") res.writeHead(200).end("answered");
      else app.gates.set(tag, () => void go());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    self = new HeldApp(server, (server.address() as { port: number }).port);
    return self;
  }

  /** Resolves once the request tagged `tag` reached the app. */
  held(tag: string): Promise<void> {
    return waitUntil(`app A holds ${tag}`, () => this.gates.has(tag), (v) => v).then(() => undefined);
  }

  /** Lets the held request tagged `tag` make its outbound call. */
  release(tag: string): void {
    const go = this.gates.get(tag);
    if (!go) throw new Error(`app A holds no request tagged ${tag}`);
    this.gates.delete(tag);
    go();
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

for (const mode of await envoyModes()) {
  describe(`deadline: a caller can only shorten its bound, in ${mode} mode`, () => {
    let slow: Upstream;
    let appA: HeldApp;
    let appB: Upstream;
    let sidecar: Envoy;

    before(async () => {
      slow = await startUpstream({ name: "slow", latencyMs: UPSTREAM_MS });
      appA = await HeldApp.start();
      appB = await startUpstream({ name: "app-b" });
      sidecar = await startEnvoy({
        config: SIDECAR_A, wasm: WASM, mode, mutate: topology,
        clusters: { app: appA.port, "app-grpc": appA.port, "service-b": appB, slow },
      });
      appA.outboundUrl = sidecar.url("outbound");
    });
    after(async () => {
      await sidecar?.stop();
      await appB?.close();
      await appA?.close();
      await slow?.close();
    });
    beforeEach(() => appB.clear());

    /** Status and wall time of one request to `listener`. */
    const timed = async (listener: string, headers: Record<string, string>) => {
      const t0 = performance.now();
      const res = await request(`${sidecar.url(listener)}/`, { headers });
      return { status: res.status, ms: performance.now() - t0 };
    };

    test("a 15 s budget on a route with a 1 s timeout to a 3 s upstream ends at the route's 1 s with 504", async () => {
      const r = await timed("bound", { [H]: "15000" });
      assert.equal(r.status, 504);
      assert.ok(r.ms >= ROUTE_MS - 50 && r.ms < ROUTE_MS + 700, `ended after ${r.ms.toFixed(0)} ms; the route says ${ROUTE_MS}`);
    });

    test("a 200 ms budget on the same route ends at about 0.2 s, and the stage publishes it as the caller's budget", async () => {
      const since = sidecar.logOffset();
      const r = await timed("bound", { [H]: "200", "x-test-tag": "short" });
      assert.equal(r.status, 504);
      assert.ok(r.ms >= 190 && r.ms < 700, `ended after ${r.ms.toFixed(0)} ms`);
      const line = await sidecar.waitForLog(/caller-budget bound tag=short budget=\S+ flags=UT/, { since });
      const budget = Number(/budget=(\d+)/.exec(line)?.[1]);
      assert.ok(budget > 150 && budget <= 200, line);
    });

    test("grpc-timeout 100m next to a 15 s project header: the smaller wins, about 0.1 s", async () => {
      const r = await timed("bound", { [H]: "15000", "grpc-timeout": "100m" });
      assert.equal(r.status, 504);
      assert.ok(r.ms >= 90 && r.ms < 600, `ended after ${r.ms.toFixed(0)} ms`);
    });

    test("with a configured default of 500 ms, a 15 s budget gets the default and a 200 ms one its own", async () => {
      const since = sidecar.logOffset();
      const long = await timed("bound-default", { [H]: "15000", "x-test-tag": "long" });
      assert.equal(long.status, 504);
      assert.ok(long.ms >= 480 && long.ms < 1_000, `ended after ${long.ms.toFixed(0)} ms; the default is 500`);
      const short = await timed("bound-default", { [H]: "200" });
      assert.equal(short.status, 504);
      assert.ok(short.ms >= 190 && short.ms < 480, `ended after ${short.ms.toFixed(0)} ms`);
      // The default bound the 15 s ask: the operator's bound applies, so no caller budget was published.
      await sidecar.waitForLog(/caller-budget bound-default tag=long budget=- flags=UT/, { since });
    });

    test("under incoming: trust the budget is the operator's own: a 15 s budget waits for the 3 s upstream", async () => {
      const r = await timed("bound-trust", { [H]: "15000" });
      assert.equal(r.status, 200);
      assert.ok(r.ms >= UPSTREAM_MS - 50, `answered after ${r.ms.toFixed(0)} ms`);
    });

    test("a duplicate request id neither lengthens the first request's deadline nor releases its entry when it finishes", async () => {
      const id = `dup-${Date.now()}`;
      const first = request(`${sidecar.url("inbound")}/`, { headers: { [H]: "3000", "x-request-id": id, "x-test-tag": "first" } });
      await appA.held("first");
      const second = await request(`${sidecar.url("inbound")}/`, {
        headers: { [H]: "9000", "x-request-id": id, "x-test-tag": "second", "x-test-answer": "now" },
      });
      assert.equal(second.status, 200, "the duplicate was answered (its hold on the entry dropped)");
      appA.release("first");
      assert.equal((await first).status, 200);
      assert.equal(appB.requests.length, 1);
      const atB = Number(appB.requests[0]!.headers[H]);
      // The outbound default is 1000 ms: a lost entry would give at most 995.
      assert.ok(atB > 1_500 && atB <= 3_000 - 5, `app B was told ${atB} ms; the first request's deadline was 3000 ms`);
    });

    test("a caller that resets its HTTP/2 stream while the app works leaves the entry: the app's outbound call still gets the deadline", async () => {
      const id = `reset-${Date.now()}`;
      const resetsBefore = (await sidecar.stat("http.inbound.downstream_rq_rx_reset")) ?? 0;
      const session = connect(sidecar.url("inbound"));
      try {
        const stream = session.request({ ":method": "GET", ":path": "/", [H]: "4000", "x-request-id": id, "x-test-tag": "reset" });
        stream.on("error", () => {});
        stream.end();
        await appA.held("reset");
        const closed = new Promise<void>((resolve) => stream.on("close", () => resolve()));
        stream.close(0x8); // RST_STREAM CANCEL: Envoy ends the inbound stream with flag DR
        await closed;
        // The inbound stream's completion (on_log) runs before Envoy forgets it; give it a beat to be processed.
        await sidecar.waitForStat("http.inbound.downstream_rq_rx_reset", atLeast(resetsBefore + 1));
        appA.release("reset");
        await waitUntil("app B got the outbound call", () => appB.requests.length, 1);
      } finally {
        session.destroy();
      }
      const atB = Number(appB.requests[0]!.headers[H]);
      assert.ok(atB > 2_000 && atB <= 4_000 - 5, `app B was told ${atB} ms; the reset request's deadline was 4000 ms (a lost entry gives 995)`);
    });
  });
}
