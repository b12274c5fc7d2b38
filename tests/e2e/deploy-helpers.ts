// Helpers of tests/e2e/deploy.test.ts: test certificates (build/certs.sh into a temporary folder), bootstraps pointed
// at them, TLS clients that present a chosen certificate, the JSON access log, and a scripted app A.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:tls";
import { freePorts, notYet, projectRoot, request, waitFor, type Bootstrap, type Envoy } from "../harness/index.js";

/** Where the shipped mTLS configs expect their certificate folder (relative to the repo root): build/out/certs/<who>. */
const SHIPPED_CERT_DIR = /^build\/out\/certs\/[\w-]+/;

/** Runs build/certs.sh with `args` into `dir`; returns its stdout. */
export function certs(dir: string, ...args: string[]): string {
  const r = spawnSync("bash", ["build/certs.sh", "--out", dir, ...args], { cwd: projectRoot, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`build/certs.sh ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Points every SDS path of a shipped mTLS config at `dir/<service>` (its certificate, key and CA). */
export function useCertsOf(dir: string, service: string): (cfg: Bootstrap) => void {
  const replace = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(replace);
    else if (node && typeof node === "object") {
      const o = node as Record<string, unknown>;
      for (const [k, v] of Object.entries(o)) {
        if (k === "path" && typeof v === "string" && SHIPPED_CERT_DIR.test(v)) o[k] = v.replace(SHIPPED_CERT_DIR, `${dir}/${service}`);
        else replace(v);
      }
    }
  };
  return replace;
}

/** A client identity: the PEM files of one folder made by build/certs.sh (cert.pem, key.pem; the mesh CA to trust). */
export interface ClientCert {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export function clientCert(dir: string, who: string): ClientCert {
  return {
    cert: readFileSync(`${dir}/${who}/cert.pem`),
    key: readFileSync(`${dir}/${who}/key.pem`),
    ca: readFileSync(`${dir}/ca/ca.pem`),
  };
}

export interface Answer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** GET over TLS presenting `id`; the server must prove a mesh identity (its SAN URI is checked by the caller). */
export function tlsGet(port: number, path: string, id: ClientCert, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1", port, path, method: "GET", headers, agent: false, timeout: 10_000,
        cert: id.cert, key: id.key, ca: id.ca, servername: "service-b",
        // Mesh certificates name a SPIFFE URI, no DNS name: the chain is verified, the name is the caller's to check.
        checkServerIdentity: () => undefined,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** The serial and SAN URI of the certificate the listener at `port` presents to a client holding `id`. */
export function presentedCertificate(port: number, id: ClientCert): Promise<{ serial: string; san: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, cert: id.cert, key: id.key, ca: id.ca, servername: "service-b", checkServerIdentity: () => undefined });
    s.once("secureConnect", () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve({ serial: String(c.serialNumber).toUpperCase(), san: String(c.subjectaltname ?? "") });
    });
    s.once("error", reject);
  });
}

/** One JSON access-log line of the shipped configs. */
export interface AccessLine {
  listener: string;
  path: string;
  code: number;
  details: string;
  flags: string;
  attempts: number;
  duration_ms: number;
  cluster: string | null;
  request_id: string | null;
  traceparent: string | null;
  tls: string | null;
  peer: string | null;
  subset: string | null;
  breaker: string | null;
  deadline_ms: string | null;
  caller_budget_ms: string | null;
  /** "<granted>/<wanted>" when the retry budget granted fewer retries than wanted, else null. */
  retries_granted: string | null;
}

/** The access-log lines Envoy has written so far (its stdout, mixed with its own log). */
export function accessLog(envoy: Envoy): AccessLine[] {
  return envoy
    .logs()
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes('"details"'))
    .map((l) => JSON.parse(l) as AccessLine);
}

/** The lines of one request id on the listener at `port`. */
export function linesOf(envoy: Envoy, requestId: string, port?: number): AccessLine[] {
  return accessLog(envoy).filter((l) => l.request_id === requestId && (port === undefined || l.listener.endsWith(`:${port}`)));
}

/** What an app forwards so its outbound call joins the caller's trace (W3C and B3). */
const TRACE_HEADERS = ["traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "b3"];

/** A Zipkin v2 span as Envoy's tracer posts it (JSON). */
export interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  kind?: string;
  localEndpoint?: { serviceName?: string; port?: number };
  tags?: Record<string, string>;
}

/** A scripted HTTP server on 127.0.0.1 (a free port), closed with its connections. */
class LocalServer {
  protected constructor(protected readonly server: Server, readonly port: number) {}

  protected static async listen(server: Server): Promise<number> {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return (server.address() as { port: number }).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A scripted Zipkin collector: keeps every span POSTed to /api/v2/spans. */
export class Collector extends LocalServer {
  readonly spans: ZipkinSpan[] = [];

  static async start(): Promise<Collector> {
    let self: Collector | undefined;
    const server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        if (req.url === "/api/v2/spans") self!.spans.push(...(JSON.parse(body) as ZipkinSpan[]));
        res.writeHead(202);
        res.end();
      });
    });
    self = new Collector(server, await LocalServer.listen(server));
    return self;
  }
}

/** App A: does `workMs` of work, then calls service-b through its sidecar's outbound listener forwarding x-request-id
 * and the trace headers. */
export class AppA extends LocalServer {
  readonly received: IncomingHttpHeaders[] = [];
  outboundPort = 0;
  workMs = 0;
  /** When set, answers this status without calling service-b. */
  failWith = 0;

  static async start(): Promise<AppA> {
    let self: AppA | undefined;
    const server = createServer((req, res) => {
      self!.received.push(req.headers);
      const app = self!;
      const answer = (status: number, body: string) => {
        if (res.destroyed) return;
        res.writeHead(status, { "content-type": "text/plain" });
        res.end(body);
      };
      // Scripted work time of the app (not a test wait).
      setTimeout(() => {
        if (app.failWith) return answer(app.failWith, "app A failing");
        const headers: Record<string, string> = { host: "service-b", "x-request-id": String(req.headers["x-request-id"]) };
        for (const h of TRACE_HEADERS) if (typeof req.headers[h] === "string") headers[h] = req.headers[h] as string;
        const out = httpRequest({ host: "127.0.0.1", port: app.outboundPort, path: "/b", headers, agent: false }, (r) => {
          let body = "";
          r.setEncoding("utf8");
          r.on("data", (d) => (body += d));
          r.on("end", () => answer(r.statusCode ?? 502, body));
        });
        out.on("error", (e) => answer(502, `app A: ${e.message}`));
        out.end();
      }, app.workMs);
    });
    self = new AppA(server, await LocalServer.listen(server));
    return self;
  }
}

/** Jaeger's listeners, each on 127.0.0.1 (it binds every interface unless told). */
const JAEGER_LISTENERS = [
  "admin.http", "collector.grpc-server", "collector.http-server", "collector.otlp.grpc", "collector.otlp.http",
  "collector.zipkin", "query.grpc-server", "query.http-server",
];

/** A real Jaeger all-in-one ($JAEGER_BIN, see the README's Deploy section): Zipkin JSON in, its query API out. */
export class Jaeger {
  private constructor(private readonly child: ReturnType<typeof spawn>, readonly zipkinPort: number, readonly queryPort: number) {}

  static async start(bin: string): Promise<Jaeger> {
    const ports = await freePorts(JAEGER_LISTENERS.length);
    const args = ["--memory.max-traces", "1000", ...JAEGER_LISTENERS.flatMap((l, i) => [`--${l}.host-port`, `127.0.0.1:${ports[i]}`])];
    const child = spawn(bin, args, { stdio: "ignore" });
    const jaeger = new Jaeger(child, ports[JAEGER_LISTENERS.indexOf("collector.zipkin")], ports[JAEGER_LISTENERS.indexOf("query.http-server")]);
    await waitFor("Jaeger's query API", async () => ((await jaeger.query("/api/services").catch(() => null))?.status === 200 ? true : notYet()), {
      timeoutMs: 30_000,
    });
    return jaeger;
  }

  query(path: string) {
    return request(`http://127.0.0.1:${this.queryPort}${path}`, { timeoutMs: 2_000 });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }
}
