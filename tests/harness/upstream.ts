// Scripted HTTP/1.1 upstream on 127.0.0.1 for Envoy to proxy to. Each hit (request received) is numbered
// from 0; what the upstream does with hit i is, in order of precedence:
//   respond(req, i) if given  >  statuses[i] if defined  >  failure when the seeded PRNG rolls < failureRate  >  status.
// The default answer echoes what was received as JSON, so tests can see the headers Envoy sent.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { waitUntil, type WaitOptions } from "./wait.js";

/** What the upstream does with one hit. Unset fields fall back to the upstream's options. */
export interface UpstreamAction {
  status?: number;
  /** Wait this long before answering (or before resetting). */
  latencyMs?: number;
  /** Extra response headers. */
  headers?: Record<string, string>;
  /** Response body; default: the JSON echo (see EchoBody). */
  body?: string;
  /** Destroy the connection instead of answering; Envoy sees an upstream reset. */
  reset?: boolean;
}

/** One request as the upstream received it. */
export interface UpstreamRequest {
  index: number;
  method: string;
  /** Path with query string, as sent. */
  url: string;
  /** Path without the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Date.now() when the request was complete. */
  at: number;
}

/** The default JSON body. */
export interface EchoBody {
  upstream: string;
  index: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface UpstreamOptions {
  /** Shown in the echo body and the x-upstream-name header. Default "upstream". */
  name?: string;
  /** Status when nothing else decides. Default 200. */
  status?: number;
  /** Status for hit 0, 1, 2, ... e.g. [503, 503, 200]; later hits fall through to the rules below. */
  statuses?: number[];
  /** Delay before every answer, in ms. Default 0. */
  latencyMs?: number;
  /** Probability (0..1) that a hit not decided by `statuses` fails. Default 0. */
  failureRate?: number;
  /** What a failing hit does. Default {status: 503}. */
  failure?: UpstreamAction;
  /** Seed of the PRNG behind failureRate, so runs repeat exactly. Default 1. */
  seed?: number;
  /** Headers added to every answer. */
  headers?: Record<string, string>;
  /** Full control: the action for hit `index` (merged over the defaults). */
  respond?: (req: UpstreamRequest, index: number) => UpstreamAction | Promise<UpstreamAction>;
}

export interface UpstreamHits {
  total: number;
  byPath: Record<string, number>;
  /** By status sent; resets are counted under "reset". */
  byStatus: Record<string, number>;
}

/** Mulberry32: small, fast, seeded, so failure patterns and fuzz runs repeat exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function validate(opts: UpstreamOptions): void {
  const rate = opts.failureRate ?? 0;
  if (!(rate >= 0 && rate <= 1)) throw new Error(`upstream failureRate must be within 0..1, got ${opts.failureRate}`);
  for (const s of [opts.status, opts.failure?.status, ...(opts.statuses ?? [])]) {
    if (s !== undefined && !(Number.isInteger(s) && s >= 100 && s <= 599)) {
      throw new Error(`upstream status must be an integer 100..599, got ${s}`);
    }
  }
  if (opts.latencyMs !== undefined && !(opts.latencyMs >= 0)) throw new Error(`upstream latencyMs must be >= 0, got ${opts.latencyMs}`);
}

export class Upstream {
  readonly port: number;
  readonly url: string;
  /** Every request received since start or clear(), in arrival order. */
  readonly requests: UpstreamRequest[] = [];
  readonly hits: UpstreamHits = { total: 0, byPath: {}, byStatus: {} };
  private opts: UpstreamOptions;
  private random: () => number;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    opts: UpstreamOptions,
  ) {
    this.opts = opts;
    this.random = prng(opts.seed ?? 1);
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new Error("upstream has no TCP address");
    this.port = addr.port;
    this.url = `http://127.0.0.1:${this.port}`;
    // Unref'd: an upstream a test forgot to close must not keep the test process alive.
    server.unref();
    server.on("connection", (s) => {
      s.unref();
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  /** Starts an upstream on 127.0.0.1 on a free port. */
  static async start(opts: UpstreamOptions = {}): Promise<Upstream> {
    validate(opts);
    let self: Upstream | undefined;
    // A request abandoned before its body ended (the client or Envoy reset it) is dropped, not an unhandled rejection.
    const server = createServer((req, res) => void self!.handle(req, res).catch(() => res.destroy()));
    server.keepAliveTimeout = 60_000; // outlive Envoy's idle timeout so Envoy, not we, closes idle connections
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    self = new Upstream(server, opts);
    return self;
  }

  get name(): string {
    return this.opts.name ?? "upstream";
  }

  /** Replaces the behaviour and clears counters, log and PRNG. */
  script(opts: UpstreamOptions): void {
    validate(opts);
    this.opts = opts;
    this.clear();
  }

  /** Clears counters and the request log and re-seeds the PRNG; the behaviour stays. */
  clear(): void {
    this.requests.length = 0;
    this.hits.total = 0;
    this.hits.byPath = {};
    this.hits.byStatus = {};
    this.random = prng(this.opts.seed ?? 1);
  }

  /** Resolves once `count` hits have arrived (with `path`: on that path); `opts` may be a timeout in ms. */
  waitForHits(count: number, opts: number | (WaitOptions & { path?: string }) = {}): Promise<number> {
    const o = typeof opts === "number" ? { timeoutMs: opts } : opts;
    const seen = () => (o.path === undefined ? this.hits.total : (this.hits.byPath[o.path] ?? 0));
    return waitUntil(`${count} hits on upstream ${this.name}${o.path === undefined ? "" : ` path ${o.path}`}`, seen, count, o);
  }

  private decide(req: UpstreamRequest): UpstreamAction | Promise<UpstreamAction> {
    const o = this.opts;
    if (o.respond) return o.respond(req, req.index);
    const scripted = o.statuses?.[req.index];
    if (scripted !== undefined) return { status: scripted };
    // The PRNG is drawn once per undecided hit, so the pattern depends only on seed and hit order.
    if ((o.failureRate ?? 0) > 0 && this.random() < o.failureRate!) return o.failure ?? { status: 503 };
    return {};
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = req.url ?? "/";
    const entry: UpstreamRequest = {
      index: this.hits.total,
      method: req.method ?? "",
      url,
      path: url.split("?")[0],
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
      at: Date.now(),
    };
    this.hits.total++;
    this.hits.byPath[entry.path] = (this.hits.byPath[entry.path] ?? 0) + 1;
    this.requests.push(entry);

    let action: UpstreamAction;
    try {
      action = await this.decide(entry);
    } catch (e) {
      action = { status: 500, body: `upstream script threw: ${(e as Error).message}` };
    }
    const latency = action.latencyMs ?? this.opts.latencyMs ?? 0;
    if (latency > 0) await new Promise((r) => setTimeout(r, latency)); // the scripted latency itself, not a wait

    const count = (key: string) => (this.hits.byStatus[key] = (this.hits.byStatus[key] ?? 0) + 1);
    if (action.reset) {
      count("reset");
      req.socket.destroy();
      return;
    }
    const status = action.status ?? this.opts.status ?? 200;
    count(String(status));
    if (res.destroyed) return; // Envoy gave up (timeout, client reset) while we waited
    const echo: EchoBody = { upstream: this.name, index: entry.index, method: entry.method, url, headers: req.headers, body: entry.body };
    const body = action.body ?? JSON.stringify(echo);
    res.writeHead(status, {
      "content-type": action.body === undefined ? "application/json" : "text/plain",
      "x-upstream-name": this.name,
      "x-upstream-index": String(entry.index),
      ...this.opts.headers,
      ...action.headers,
    });
    res.end(body);
  }

  /** Stops listening and drops every open connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** Shorthand for Upstream.start(opts). */
export function startUpstream(opts: UpstreamOptions = {}): Promise<Upstream> {
  return Upstream.start(opts);
}
