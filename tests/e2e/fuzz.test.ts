// Random header sets (tests/fuzz/input.ts: hostile authorities, every header a filter reads, malformed values) through
// every module on `{}` in a real Envoy at --concurrency 2, 16 in flight, each on its own connection: the upstream
// answers codes 100..999, resets some connections and outlives the route's 1 s timeout on a few; the test abandons some
// requests itself. Asserted: every request not abandoned gets a status, Envoy stays up with no Wasm failure or critical
// line in its log, and the series it holds stay within the caps (destinations per metric, code and flag labels, count).
// FUZZ_SEED=<n> repeats a run; FUZZ_E2E_REQUESTS=<n> changes the count (default 1,500 per module).
import assert from "node:assert/strict";
import { request as httpRequest, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { describe, test } from "node:test";
import { envoyModes, startEnvoy } from "../harness/index.js";
import { assertBoundedLabels, Dice, headerSet, prng, seedFor, SERVICES } from "../fuzz/input.js";
import { clusterNames, writeBootstrap, type Service } from "./hostile/bootstrap.js";
import { Farm } from "./hostile/clients.js";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) >>> 0;
const REQUESTS = Number(process.env.FUZZ_E2E_REQUESTS ?? 1_500);
const IN_FLIGHT = 16;
const MODULES = ["service-metrics", "deadline", "traffic-split", "outlier-breaker", "retry-budget", "resilience"];
/** Series Envoy may hold for one module's filter after the run (its own stats are not counted): the labels are bounded (assertBoundedLabels), and 1,500 requests define far fewer than this; one leaked per request would pass it. */
const MAX_SERIES = 1_500;
/** What a Wasm failure looks like in Envoy's log: a trapped callback, a failed VM, a critical line from a module. */
const WASM_FAILURE = /Function: \S+ failed|Uncaught RuntimeError|wasm trap|Plugin configured to fail closed failed to load|\[critical\]\[wasm\]|wasm log[^\n]*critical/i;

const ROUTED: Service[] = SERVICES.map((name) => ({
  name, timeoutMs: 1_000, ...(name === "checkout" ? { headerRoute: { header: "x-traffic-subset", exact: "canary", cluster: "canary" } } : {}),
}));

console.log(`e2e fuzz: seed ${SEED} (FUZZ_SEED=${SEED} repeats this run), ${REQUESTS} requests per module`);

/** A header value as raw UTF-8 bytes on the wire (Node's client takes one byte per char up to 0xff). */
const wire = (v: string) => Buffer.from(v, "utf8").toString("latin1");

interface Outcome {
  status?: number;
  error?: string;
  abandoned: boolean;
}

/** One random request on its own connection; `abandonAfterMs` closes it early. */
function fire(port: number, h: Record<string, string>, extra: Record<string, string>, abandonAfterMs?: number): Promise<Outcome> {
  const headers: Record<string, string> = { connection: "close", ...extra };
  for (const [k, v] of Object.entries(h)) if (!k.startsWith(":")) headers[k] = wire(v);
  headers.host = wire(h[":authority"]!);
  return new Promise((resolve) => {
    let status: number | undefined;
    let error: string | undefined;
    const req = httpRequest({ host: "127.0.0.1", port, method: h[":method"], path: h[":path"], headers, agent: false, timeout: 15_000 }, (res) => {
      status = res.statusCode;
      res.resume();
      res.on("error", (e) => (error = e.message));
    });
    // CONNECT answers (and upgrades) come as their own events, with the socket handed over.
    for (const ev of ["connect", "upgrade"]) req.on(ev, (res: IncomingMessage, socket: Socket) => ((status = res.statusCode), socket.destroy()));
    req.on("timeout", () => req.destroy(new Error("no answer within 15 s")));
    req.on("error", (e) => (error = e.message));
    // "close" comes last whatever happened (answered, refused, abandoned mid-body).
    req.on("close", () => resolve({ status, error, abandoned: abandonAfterMs !== undefined }));
    req.end();
    if (abandonAfterMs !== undefined) setTimeout(() => req.destroy(), abandonAfterMs);
  });
}

for (const mode of await envoyModes()) {
  describe(`fuzz in a real Envoy (${mode} mode, two workers, seed ${SEED})`, () => {
    for (const module of MODULES) {
      test(`${module}.wasm on {}: ${REQUESTS} random header sets all answered, no Wasm failure, series bounded`, async () => {
        const d = new Dice(prng(seedFor(SEED, `e2e-${module}`)));
        const farm = await Farm.start(clusterNames(ROUTED));
        for (const cluster of clusterNames(ROUTED)) {
          farm.behave(cluster, (req) => ({
            status: Number(req.headers["x-fuzz-status"] ?? 200),
            latencyMs: Number(req.headers["x-fuzz-latency"] ?? 0),
            reset: req.headers["x-fuzz-reset"] === "1",
          }));
        }
        const envoy = await startEnvoy({ config: writeBootstrap(ROUTED, [{ module, config: "{}" }]), clusters: farm.upstreams, concurrency: 2, mode });
        try {
          // Drawn up front, so the seed fixes every request whatever order they complete in.
          const plan = Array.from({ length: REQUESTS }, () => ({
            h: headerSet(d),
            extra: {
              "x-fuzz-status": String(d.chance(0.6) ? 200 : d.int(100, 999)),
              "x-fuzz-latency": String(d.chance(0.01) ? 1_200 : d.int(0, 20)),
              ...(d.chance(0.03) ? { "x-fuzz-reset": "1" } : {}),
            } as Record<string, string>,
            abandonAfterMs: d.chance(0.03) ? d.int(0, 30) : undefined,
          }));
          const outcomes: Outcome[] = [];
          let next = 0;
          const worker = async () => {
            while (next < plan.length) {
              const p = plan[next++]!;
              outcomes.push(await fire(envoy.port(), p.h, p.extra, p.abandonAfterMs));
            }
          };
          await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
          const unanswered = outcomes.filter((o) => o.status === undefined && !o.abandoned);
          assert.deepEqual(unanswered.map((o) => o.error).slice(0, 10), [], `${unanswered.length} of ${REQUESTS} requests got no status`);
          assert.ok(outcomes.filter((o) => o.status !== undefined).length >= REQUESTS * 0.9, "most requests answered");
          assert.equal(await envoy.exitCode(), undefined, "Envoy is still running");
          assert.equal((await envoy.admin("/ready")).status, 200);
          assert.doesNotMatch(envoy.logs(), WASM_FAILURE);
          const text = (await envoy.admin("/stats")).body;
          const names = text.split("\n").map((l) => l.slice(0, l.indexOf(": "))).filter((n) => n.includes("=.=") || n.includes("resilience_"));
          assertBoundedLabels(names);
          assert.ok(names.length > 0, "the module defined its series");
          assert.ok(names.length <= MAX_SERIES, `${names.length} series (bound ${MAX_SERIES})`);
          const codes = new Map<number, number>();
          for (const o of outcomes) if (o.status !== undefined) codes.set(o.status, (codes.get(o.status) ?? 0) + 1);
          console.log(`e2e fuzz ${module} (${mode}): ${outcomes.length} sent, ${outcomes.filter((o) => o.abandoned).length} abandoned by the test, ` +
            `${names.length} series; statuses ${[...codes].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([c, n]) => `${c}x${n}`).join(" ")}`);
        } finally {
          await envoy.stop();
          await farm.close();
        }
      });
    }
  });
}
