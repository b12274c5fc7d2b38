// The deadline filter's cross-hop table in a real Envoy (every mode envoyModes() offers): it stays within its slot
// count after 100,000 requests, measured as Envoy's heap (admin /memory, tcmalloc's allocated bytes) against a
// calibration run that shows what shared-data keys cost; and ids beyond the slot count are refused, never evicting a live entry.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Agent } from "undici";
import { closeHttp, envoyModes, seriesValue, startEnvoy, startUpstream, type Bootstrap, type Envoy, type Upstream } from "../harness/index.js";

after(closeHttp);

const SLOTS = 4096; // as shipped in envoy-configs/deadline.yaml
const BIG_SLOTS = 65_536;
const SMALL_SLOTS = 16;

/** Adds a copy of the inbound listener with its own table and routes (ports are rewritten by the harness). */
function addListener(cfg: Bootstrap, name: string, port: number, plugin: object, routes: object[]): void {
  const inbound = cfg.static_resources.listeners.find((l: Bootstrap) => l.name === "inbound");
  const copy = structuredClone(inbound);
  copy.name = name;
  copy.address.socket_address.port_value = port;
  const hcm = copy.filter_chains[0].filters[0].typed_config;
  hcm.route_config.virtual_hosts[0].routes = routes;
  hcm.http_filters[0].typed_config.config.name = `deadline-${name}`;
  hcm.http_filters[0].typed_config.config.configuration.value = JSON.stringify(plugin);
  cfg.static_resources.listeners.push(copy);
}

/** Records and occupancy reach Envoy on the filter's housekeeping tick, every second. */
const tick = () => new Promise((r) => setTimeout(r, 1_100));

const DIRECT = [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }];

function topology(cfg: Bootstrap): void {
  // The shipped inbound listener (4096 slots) answers by itself: 100k requests cost no upstream.
  cfg.static_resources.listeners.find((l: Bootstrap) => l.name === "inbound").filter_chains[0].filters[0].typed_config
    .route_config.virtual_hosts[0].routes = DIRECT;
  addListener(cfg, "big", 10110, { reporter: "gateway", defaultMs: 1000, crossHop: { mode: "record", table: "big", slots: BIG_SLOTS } }, DIRECT);
  addListener(cfg, "small", 10111, { reporter: "outbound", defaultMs: 5000, crossHop: { mode: "record", table: "small", slots: SMALL_SLOTS } },
    [{ match: { prefix: "/" }, route: { cluster: "app", timeout: "15s" } }]);
}

for (const mode of await envoyModes()) {
  describe(`the deadline filter's cross-hop table in ${mode} mode`, () => {
    let slow: Upstream;
    let envoy: Envoy;
    let agent: Agent;

    before(async () => {
      slow = await startUpstream({ name: "slow-app", latencyMs: 3_000 }); // in flight across a housekeeping tick
      envoy = await startEnvoy({
        config: "envoy-configs/deadline.yaml", wasm: { deadline: "build/deadline.wasm" }, mode, mutate: topology,
        clusters: { app: slow, "app-grpc": slow, "service-b": slow },
      });
      agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
    });
    after(async () => {
      await agent?.close();
      await envoy?.stop();
      await slow?.close();
    });

    /** Envoy's heap in use (tcmalloc), in bytes. */
    const allocated = async () => Number((await envoy.admin("/memory")).json<{ allocated: string }>().allocated);
    const gauge = async (reporter: string) =>
      seriesValue(await envoy.promSeries(), "resilience_deadline_crosshop_slots_used", { reporter }) ?? NaN;
    const counter = async (name: string, reporter: string) =>
      seriesValue(await envoy.promSeries(), `resilience_deadline_${name}`, { reporter }) ?? NaN;

    /** n requests over 16 keep-alive connections; every one must be answered 200. Each gets a fresh x-request-id. */
    const blast = async (listener: string, n: number) => {
      const origin = envoy.url(listener);
      let next = 0;
      const worker = async () => {
        while (next < n) {
          next++;
          const r = await agent.request({ origin, path: "/", method: "GET" });
          await r.body.dump();
          assert.equal(r.statusCode, 200);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    };

    /** `n` requests at once, one connection each; every one must be answered 200. */
    const blastConcurrently = async (origin: string, n: number) => {
      const parallel = new Agent({ connections: n, keepAliveTimeout: 1_000 });
      try {
        const all = Array.from({ length: n }, async () => {
          const r = await parallel.request({ origin, path: "/", method: "GET" });
          await r.body.dump();
          return r.statusCode;
        });
        assert.deepEqual(new Set(await Promise.all(all)), new Set([200]));
      } finally {
        await parallel.close();
      }
    };

    test("after 100,000 requests the table still holds slots/4 keys: Envoy's heap does not grow with requests", { timeout: 180_000 }, async () => {
      // Warm-up: 10k ids touch every one of the 1024 keys (the chance one is missed is below 1e-3), connections
      // and per-worker buffers reach their working size.
      await blast("inbound", 10_000);
      const before = await allocated();
      let peakUsed = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peakUsed = Math.max(peakUsed, await gauge("inbound"));
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const t0 = performance.now();
      await blast("inbound", 100_000);
      const seconds = (performance.now() - t0) / 1000;
      sampling = false;
      await sampler;
      const grown = (await allocated()) - before;

      // Calibration: the same filter with a 65,536-slot table: 20k ids create about 11.5k of its 16,384 keys.
      const calBefore = await allocated();
      await blast("big", 20_000);
      const calGrown = (await allocated()) - calBefore;
      const keysMade = (BIG_SLOTS / 4) * (1 - Math.pow(1 - 4 / BIG_SLOTS, 20_000));
      const perKey = calGrown / keysMade;

      console.log(
        `# 100,000 requests in ${seconds.toFixed(1)} s: Envoy heap ${grown >= 0 ? "+" : ""}${grown} bytes; peak slots used ${peakUsed} of ${SLOTS}; ` +
          `calibration: ${Math.round(keysMade)} new keys = +${calGrown} bytes (${perKey.toFixed(0)} bytes a key), so the ` +
          `${SLOTS}-slot table is about ${Math.round((SLOTS / 4) * perKey / 1024)} KiB and a key per request would have cost ` +
          `${((100_000 * perKey) / 1048576).toFixed(1)} MiB`,
      );
      assert.ok(perKey >= 64, `the instrument must see shared-data keys: ${perKey.toFixed(0)} bytes a key`);
      assert.ok(grown < 512 * 1024, `Envoy's heap grew ${grown} bytes over 100,000 requests`);
      assert.ok(grown < (100_000 * perKey) / 50, "far below what a key per request costs");
      await tick();
      assert.equal(await counter("crosshop_records_total", "inbound"), 110_000);
      assert.ok(peakUsed <= SLOTS, `slots used peaked at ${peakUsed}`);
      assert.equal(await gauge("inbound"), 0, "every request was answered, so every slot was released");
    });

    // Was "the earliest deadlines are evicted": a live entry is no longer pushed out (a caller holding many long budgets
    // must not evict others' entries), so the ids beyond the slot count are refused and counted.
    test("more requests in flight than slots: the ids beyond the slot count are refused, counted, and occupancy stays at the slot count", async () => {
      const inFlight = 64;
      const load = blastConcurrently(envoy.url("small"), inFlight);
      await slow.waitForHits(inFlight, 10_000);
      await tick();
      assert.equal(await gauge("outbound"), SMALL_SLOTS, "all slots taken, none beyond");
      assert.equal(await counter("crosshop_records_total", "outbound"), SMALL_SLOTS);
      assert.equal(await counter("crosshop_full_total", "outbound"), inFlight - SMALL_SLOTS);
      await load;
    });

  });
}
