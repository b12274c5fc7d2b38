// Soak: 1,000,000 requests (h2load, HTTP/1.1, 16 keep-alive connections) through the combined module on its shipped
// configuration (envoy-configs/resilience.yaml, service "inventory") to a loopback upstream answering 200 on /ok and 404
// on /missing. Then: the counts must agree exactly, per code (what h2load got == what service-metrics counted == what the
// upstream answered), and memory must stay flat (the modules' resilience_wasm_memory_bytes and Envoy's heap from admin
// /memory, after a warm-up, at intervals, after). Prints a table; exits 1 on a mismatch or growth beyond the margins.
// Not in CI:  npm run soak   (SOAK_REQUESTS=<n> for a shorter run)
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { promisify } from "node:util";
import { startEnvoy, selectSeries, seriesValue, waitUntil, type Envoy } from "../harness/index.js";

const REQUESTS = Number(process.env.SOAK_REQUESTS ?? 1_000_000);
const WARMUP = 20_000;
const CLIENTS = 16;
const SAMPLE_MS = 15_000;
/** Growth allowed from the warmed-up baseline to the end: the Wasm heap may settle into one more page per VM; Envoy's heap by a few MiB (stats, connection pools). */
const MAX_WASM_GROWTH = 2 * 64 * 1024 * 2;
const MAX_HEAP_GROWTH = 8 * 1024 * 1024;
const PATHS = ["/ok", "/ok", "/missing"];
const run = promisify(execFile);

/** A loopback upstream that only counts: 200 on /ok, 404 otherwise. */
async function countingUpstream(): Promise<{ port: number; byCode: Record<string, number>; close(): void }> {
  const byCode: Record<string, number> = {};
  const server = createServer((req, res) => {
    const code = req.url === "/ok" ? 200 : 404;
    byCode[code] = (byCode[code] ?? 0) + 1;
    req.resume();
    req.on("end", () => res.writeHead(code, { "content-type": "text/plain", "content-length": "2" }).end("ok"));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("upstream has no port");
  return {
    port: addr.port, byCode, close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** h2load's answer counts by class, from its summary. */
async function h2load(envoy: Envoy, n: number): Promise<{ done: number; classes: Record<string, number>; rps: number }> {
  const urls = PATHS.map((p) => `${envoy.url()}${p}`);
  const { stdout } = await run("h2load", ["--h1", "-n", String(n), "-c", String(CLIENTS), "-H", ":authority: inventory", ...urls], { maxBuffer: 16 << 20 });
  const m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
  const s = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const r = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(stdout);
  if (!m || !s || !r) throw new Error(`cannot read h2load's summary:\n${stdout}`);
  // h2load counts 4xx answers as "failed"; only errors (no answer) are a failure here.
  if (Number(m[5]) !== 0) throw new Error(`h2load: ${m[5]} errored:\n${stdout}`);
  return { done: Number(m[2]), classes: { "2xx": Number(s[1]), "3xx": Number(s[2]), "4xx": Number(s[3]), "5xx": Number(s[4]) }, rps: Number(r[1]) };
}

interface Sample {
  at: string;
  wasmBytes: number;
  heapAllocated: number;
  heapSize: number;
}

async function sample(envoy: Envoy, at: string): Promise<Sample> {
  const series = await envoy.promSeries();
  const wasmBytes = selectSeries(series, "resilience_wasm_memory_bytes").reduce((n, s) => n + s.value, 0);
  const mem = (await envoy.admin("/memory")).json<{ allocated: string; heap_size: string }>();
  return { at, wasmBytes, heapAllocated: Number(mem.allocated), heapSize: Number(mem.heap_size) };
}

const served = async (envoy: Envoy, code: string) =>
  seriesValue(await envoy.promSeries(), "resilience_requests_total", { destination_service: "inventory", response_code: code }) ?? 0;

async function main(): Promise<void> {
  const upstream = await countingUpstream();
  const envoy = await startEnvoy({
    config: "envoy-configs/resilience.yaml", concurrency: 2,
    clusters: { "checkout-stable": upstream.port, "checkout-canary": upstream.port, inventory: upstream.port, payments: upstream.port },
  });
  let failed = false;
  try {
    await h2load(envoy, WARMUP);
    // Wait for the warm-up's counts to land (counters are flushed each second), so the baseline is settled.
    await waitUntil("warm-up counted", async () => (await served(envoy, "200")) + (await served(envoy, "404")), WARMUP, { timeoutMs: 15_000 });
    const before = { ok: await served(envoy, "200"), missing: await served(envoy, "404"), up: { ...upstream.byCode } };
    const samples: Sample[] = [await sample(envoy, "after warm-up")];
    const t0 = Date.now();
    const load = h2load(envoy, REQUESTS);
    let finished = false;
    void load.finally(() => (finished = true)).catch(() => {});
    while (!finished) {
      await Promise.race([load.catch(() => {}), new Promise((r) => setTimeout(r, SAMPLE_MS))]);
      if (!finished) samples.push(await sample(envoy, `${((Date.now() - t0) / 1000).toFixed(0)} s`));
    }
    const result = await load;
    const counted = async () => ({ ok: (await served(envoy, "200")) - before.ok, missing: (await served(envoy, "404")) - before.missing });
    const want = { ok: result.classes["2xx"]!, missing: result.classes["4xx"]! };
    const got = await waitUntil("service-metrics counted every request", counted, (c) => c.ok === want.ok && c.missing === want.missing, { timeoutMs: 15_000 })
      .catch(async () => counted());
    samples.push(await sample(envoy, "end"));
    const up = { ok: (upstream.byCode[200] ?? 0) - (before.up[200] ?? 0), missing: (upstream.byCode[404] ?? 0) - (before.up[404] ?? 0) };

    const rows: [string, string, string, string][] = [
      ["code", "h2load received", "service-metrics counted", "upstream answered"],
      ["200", String(want.ok), String(got.ok), String(up.ok)],
      ["404", String(want.missing), String(got.missing), String(up.missing)],
      ["total", String(result.done), String(got.ok + got.missing), String(up.ok + up.missing)],
    ];
    console.log(`\nsoak: ${REQUESTS} requests through build/resilience.wasm (envoy-configs/resilience.yaml), ${CLIENTS} connections, ${result.rps.toFixed(0)} req/s, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    for (const r of rows) console.log(`  ${r[0].padEnd(6)} ${r[1].padStart(16)} ${r[2].padStart(24)} ${r[3].padStart(18)}`);
    console.log(`\n  ${"when".padEnd(14)} ${"wasm memory".padStart(14)} ${"envoy allocated".padStart(16)} ${"envoy heap".padStart(14)}`);
    for (const s of samples) console.log(`  ${s.at.padEnd(14)} ${String(s.wasmBytes).padStart(14)} ${String(s.heapAllocated).padStart(16)} ${String(s.heapSize).padStart(14)}`);

    const first = samples[0]!;
    const last = samples.at(-1)!;
    const checks: [boolean, string][] = [
      [result.done === REQUESTS, `h2load completed ${result.done} of ${REQUESTS}`],
      [want.ok + want.missing === result.done && result.classes["5xx"] === 0 && result.classes["3xx"] === 0, `h2load classes ${JSON.stringify(result.classes)}`],
      [got.ok === want.ok && got.missing === want.missing, "service-metrics counts equal h2load's per code"],
      [up.ok === want.ok && up.missing === want.missing, "the upstream answered exactly what h2load received, per code"],
      [last.wasmBytes - first.wasmBytes <= MAX_WASM_GROWTH, `wasm memory grew by ${last.wasmBytes - first.wasmBytes} bytes (at most ${MAX_WASM_GROWTH})`],
      [last.heapAllocated - first.heapAllocated <= MAX_HEAP_GROWTH, `Envoy's allocated heap grew by ${last.heapAllocated - first.heapAllocated} bytes (at most ${MAX_HEAP_GROWTH})`],
    ];
    console.log("");
    for (const [ok, what] of checks) {
      console.log(`  ${ok ? "ok  " : "FAIL"} ${what}`);
      if (!ok) failed = true;
    }
  } finally {
    await envoy.stop();
    upstream.close();
  }
  process.exit(failed ? 1 : 0);
}

await main();
