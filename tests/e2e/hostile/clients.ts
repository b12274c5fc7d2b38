// Clients a hostile caller uses: one request per connection (so both workers see traffic), a request whose body never
// comes, a request abandoned mid-flight over HTTP/1 (socket closed) or HTTP/2 (stream reset), and one upstream per
// cluster whose behaviour a test can change.
import { request as httpRequest } from "node:http";
import { connect as h2connect, constants as h2 } from "node:http2";
import { connect as tcpConnect, type Socket } from "node:net";
import { startUpstream, type Envoy, type Upstream, type UpstreamAction, type UpstreamRequest } from "../../harness/index.js";

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Milliseconds from sending to the end of the answer. */
  ms: number;
}

/** One request on its own connection (Connection: close). */
export function send(envoy: Envoy, host: string, opts: { path?: string; method?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${envoy.url()}${opts.path ?? "/"}`, {
      agent: false, method: opts.method ?? "GET", headers: { host, connection: "close", ...opts.headers }, timeout: opts.timeoutMs ?? 20_000,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: performance.now() - t0 }));
    });
    req.on("timeout", () => req.destroy(new Error(`request to ${host}${opts.path ?? "/"} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** Sends `n` requests one after another and returns their answers. */
export async function sendMany(n: number, envoy: Envoy, host: string, opts: Parameters<typeof send>[2] = {}): Promise<Answer[]> {
  const out: Answer[] = [];
  for (let i = 0; i < n; i++) out.push(await send(envoy, host, opts));
  return out;
}

const SLOW_BODY = 1_000;

/** A POST whose headers are sent and whose announced body is withheld; close() sends it and ends the connection. */
export async function slowBody(envoy: Envoy, host: string): Promise<{ close(): void }> {
  const socket: Socket = tcpConnect(envoy.port(), "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.on("error", () => {});
  socket.write(`POST / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${SLOW_BODY}\r\n\r\n`);
  // The body completes rather than aborts, so the upstream sees a whole request (an aborted one rejects in its handler).
  return { close: () => void socket.end(Buffer.alloc(SLOW_BODY, 0x61)) };
}

/** An HTTP/1 request dropped by the caller (socket closed) once `when` resolves. */
export function abandonH1(envoy: Envoy, host: string, path: string, when: Promise<unknown>, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest(`${envoy.url()}${path}`, { agent: false, headers: { host, ...headers } });
    req.on("error", () => resolve());
    req.on("response", (res) => res.resume().on("end", () => resolve()));
    req.end();
    void when.then(() => req.destroy());
  });
}

/** An HTTP/2 request (prior knowledge) reset by the caller (RST_STREAM CANCEL) once `when` resolves. */
export function resetH2(envoy: Envoy, host: string, path: string, when: Promise<unknown>, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve) => {
    const session = h2connect(envoy.url());
    session.on("error", () => {});
    const stream = session.request({ ":method": "GET", ":path": path, ":authority": host, ...headers });
    stream.on("error", () => {});
    stream.on("close", () => {
      session.close();
      resolve();
    });
    stream.resume();
    stream.end();
    void when.then(() => stream.close(h2.NGHTTP2_CANCEL));
  });
}

type Behaviour = (req: UpstreamRequest) => UpstreamAction | Promise<UpstreamAction>;

/** One upstream per cluster; `behave(cluster, fn)` changes what it answers; `hits(cluster)` counts what it received. */
export class Farm {
  readonly upstreams: Record<string, Upstream> = {};
  private readonly behaviour = new Map<string, Behaviour>();

  static async start(clusters: string[]): Promise<Farm> {
    const farm = new Farm();
    for (const name of clusters) {
      farm.upstreams[name] = await startUpstream({ name, respond: (req) => (farm.behaviour.get(name) ?? (() => ({})))(req) });
    }
    return farm;
  }

  behave(cluster: string, fn: Behaviour): void {
    this.behaviour.set(cluster, fn);
  }

  hits(cluster: string): number {
    return this.upstreams[cluster]!.hits.total;
  }

  async close(): Promise<void> {
    for (const u of Object.values(this.upstreams)) await u.close();
  }
}
