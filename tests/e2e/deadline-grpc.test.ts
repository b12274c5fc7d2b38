// deadline with a real gRPC client (@grpc/grpc-js) through Envoy over HTTP/2, in every mode envoyModes() offers:
// service A's sidecar (envoy-configs/deadline.yaml) in front of a gRPC server on 127.0.0.1 (inbound), and the same
// server as the target of the app's outbound calls, so the deadline recorded for an inbound request governs them.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  closeHttp, envoyModes, request, seriesValue, startEnvoy, startUpstream, type Bootstrap, type Envoy, type Upstream,
} from "../harness/index.js";

const H = "x-resilience-deadline-ms";
/** The inbound and outbound margins are raised from the shipped 5 ms so a rewritten grpc-timeout is unmistakable. */
const MARGIN_MS = 50;

after(closeHttp);

/** One unary method with raw-bytes messages: no .proto needed for a deadline test. */
const ECHO = {
  call: {
    path: "/deadline.Echo/Call",
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;

/** What the server saw of one call. */
interface Seen {
  /** Absolute deadline the server derived from grpc-timeout (ms since epoch; Infinity without one). */
  deadlineMs: number;
  receivedAt: number;
  metadata: Record<string, string>;
}

class EchoServer {
  readonly seen: Seen[] = [];
  private constructor(private readonly server: grpc.Server, readonly port: number) {}

  static async start(): Promise<EchoServer> {
    const server = new grpc.Server();
    let self: EchoServer | undefined;
    server.addService(ECHO, {
      call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        const d = call.getDeadline();
        const metadata: Record<string, string> = {};
        for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
        self!.seen.push({ deadlineMs: d instanceof Date ? d.getTime() : Number(d), receivedAt: Date.now(), metadata });
        done(null, Buffer.from("pong"));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    self = new EchoServer(server, port);
    return self;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

const EchoClient = grpc.makeGenericClientConstructor(ECHO, "Echo");
type Client = InstanceType<typeof EchoClient> & {
  call(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): grpc.ClientUnaryCall;
};

/** One unary call; resolves with the error (or null) rather than throwing. */
function call(client: Client, opts: grpc.CallOptions, metadata: Record<string, string> = {}): Promise<grpc.ServiceError | null> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => client.call(Buffer.from("ping"), md, opts, (e) => resolve(e)));
}

function withMargins(cfg: Bootstrap): void {
  for (const l of cfg.static_resources.listeners) {
    const wasm = l.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration;
    wasm.value = JSON.stringify({ ...JSON.parse(wasm.value), marginMs: MARGIN_MS });
  }
}

/** Per-request series (budgets) reach Envoy on the filter's housekeeping tick, every second. */
const tick = () => new Promise((r) => setTimeout(r, 1_100));

async function metric(envoy: Envoy, name: string, labels: Record<string, string>): Promise<number> {
  return seriesValue(await envoy.promSeries(), `resilience_deadline_${name}`, labels) ?? 0;
}

for (const mode of await envoyModes()) {
  describe(`deadline with a real gRPC client in ${mode} mode`, () => {
    let server: EchoServer;
    let app: Upstream;
    let envoy: Envoy;
    let inbound: Client;
    let outbound: Client;

    before(async () => {
      server = await EchoServer.start();
      app = await startUpstream({ name: "app-a" });
      envoy = await startEnvoy({
        config: "envoy-configs/deadline.yaml", wasm: { deadline: "build/deadline.wasm" }, mode, mutate: withMargins,
        clusters: { app, "app-grpc": server, "service-b": server },
      });
      inbound = new EchoClient(`127.0.0.1:${envoy.port("inbound")}`, grpc.credentials.createInsecure()) as Client;
      outbound = new EchoClient(`127.0.0.1:${envoy.port("outbound")}`, grpc.credentials.createInsecure()) as Client;
      // Each client keeps one HTTP/2 connection, served by one worker: warm that worker's upstream connection, so a
      // relative grpc-timeout is not stretched by a TCP and HTTP/2 handshake on the way to the server.
      for (const c of [inbound, outbound]) assert.equal(await call(c, {}), null);
    });
    after(async () => {
      inbound?.close();
      outbound?.close();
      await envoy?.stop();
      await app?.close();
      await server?.close();
    });
    beforeEach(() => {
      server.seen.length = 0;
      app.script({ name: "app-a" });
    });

    test("a call with a 2 s deadline reaches the server with a grpc-timeout no larger than the time it has left", async () => {
      await tick();
      const before = await metric(envoy, "budgets_total", { reporter: "inbound", budget_source: "grpc-timeout" });
      const deadline = Date.now() + 2_000;
      assert.equal(await call(inbound, { deadline }), null);
      const [seen] = server.seen;
      assert.ok(seen, "the server got the call");
      // Passed through untouched, grpc-timeout would put the server's deadline at or after the client's (it is relative,
      // so transit only adds); the sidecar took its 50 ms margin off, which leaves room for transit on a busy machine.
      assert.ok(seen.deadlineMs <= deadline - 10, `server deadline ${seen.deadlineMs - deadline} ms after the client's`);
      assert.ok(seen.deadlineMs > deadline - 500, "the budget was not cut short");
      const told = Number(seen.metadata[H]);
      assert.ok(told > 1_500 && told <= 2_000 - MARGIN_MS, `the project header said ${told}`);
      await tick();
      assert.equal(await metric(envoy, "budgets_total", { reporter: "inbound", budget_source: "grpc-timeout" }), before + 1);
    });

    test("a call without a deadline gets the sidecar's default as its grpc-timeout", async () => {
      assert.equal(await call(inbound, {}), null);
      const [seen] = server.seen;
      const left = seen!.deadlineMs - seen!.receivedAt;
      assert.ok(left > 800 && left <= 1_000 - MARGIN_MS + 2, `the server was given ${left} ms; the default is 1000`);
    });

    test("an exhausted deadline returns DEADLINE_EXCEEDED from the sidecar without reaching the server", async () => {
      const before = await metric(envoy, "rejections_total", { reporter: "inbound" });
      // 40 ms left, a 50 ms margin: spent on arrival (the client's own timer would fire only at 40 ms).
      const err = await call(inbound, { deadline: Date.now() + 40 });
      assert.equal(err?.code, grpc.status.DEADLINE_EXCEEDED);
      assert.equal(err?.details, "deadline exceeded", "the sidecar's reply, not the client's timer");
      // The project header can carry a spent budget too, whatever grpc-timeout says.
      const viaHeader = await call(inbound, { deadline: Date.now() + 5_000 }, { [H]: "3" });
      assert.equal(viaHeader?.code, grpc.status.DEADLINE_EXCEEDED);
      assert.equal(viaHeader?.details, "deadline exceeded");
      assert.equal(server.seen.length, 0, "the server never saw either call");
      assert.equal(await metric(envoy, "rejections_total", { reporter: "inbound" }), before + 2);
    });

    test("the app's outbound gRPC call inherits the inbound request's deadline by x-request-id", async () => {
      app.script({ latencyMs: 400 });
      const t0 = Date.now();
      const pending = request(`${envoy.url("inbound")}/work`, { headers: { [H]: "2000", "x-request-id": "grpc-xhop-1" } });
      await app.waitForHits(1);
      await new Promise((r) => setTimeout(r, 100));
      const err = await call(outbound, { deadline: Date.now() + 10_000 }, { "x-request-id": "grpc-xhop-1" });
      assert.equal((await pending).status, 200);
      assert.equal(err, null);
      const [seen] = server.seen;
      // The inbound deadline is request.time + 2000 (request.time a little after t0); the outbound side takes its 50 ms
      // margin off it, more than connection set-up and transit add.
      assert.ok(seen!.deadlineMs <= t0 + 2_000, `server deadline ${seen!.deadlineMs - t0} ms after the inbound request`);
      assert.ok(seen!.deadlineMs > t0 + 1_500, "the inbound budget, not the client's 10 s");
    });

    test("once the inbound request ran out of time, the app's late outbound gRPC call fails at once without reaching the server", async () => {
      app.script({ latencyMs: 400 });
      const res = await request(`${envoy.url("inbound")}/work`, { headers: { [H]: "150", "x-request-id": "grpc-xhop-2" } });
      assert.equal(res.status, 504, "the inbound router's timeout fired");
      const err = await call(outbound, { deadline: Date.now() + 10_000 }, { "x-request-id": "grpc-xhop-2" });
      assert.equal(err?.code, grpc.status.DEADLINE_EXCEEDED);
      assert.equal(err?.details, "deadline exceeded");
      assert.equal(server.seen.length, 0);
    });
  });
}
