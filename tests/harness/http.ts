// Test-side HTTP client: undici over one keep-alive Agent, answers read fully into strings.
// Call closeHttp() in an after() hook; the next request opens a fresh Agent.
import { Agent, request as undiciRequest } from "undici";

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole-request deadline (headers and body). Default 15 s. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON; throws naming the status and the start of the body when it is not JSON. */
  json<T = unknown>(): T;
}

let agent: Agent | undefined;

function sharedAgent(): Agent {
  agent ??= new Agent({ keepAliveTimeout: 4_000, keepAliveMaxTimeout: 10_000, connections: 64 });
  return agent;
}

export async function request(url: string, opts: RequestOptions = {}): Promise<HttpResponse> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const res = await undiciRequest(url, {
    method: (opts.method ?? "GET") as "GET",
    headers: opts.headers,
    body: opts.body,
    dispatcher: sharedAgent(),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await res.body.text();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  const status = res.statusCode;
  return {
    status,
    headers,
    body,
    json<T>() {
      try {
        return JSON.parse(body) as T;
      } catch {
        throw new Error(`response ${status} from ${url} is not JSON: ${JSON.stringify(body.slice(0, 200))}`);
      }
    },
  };
}

/** Closes the shared Agent's connections so the test process can exit. */
export async function closeHttp(): Promise<void> {
  const a = agent;
  agent = undefined;
  await a?.close();
}
