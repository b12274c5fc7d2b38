// path-guard and the package's service-metrics module in a real Envoy, through the package's harness
// (ENVOY_BIN=/path/to/envoy; process mode unless ENVOY_MODE=container). `npm run build` first.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { closeHttp, request, startEnvoy, startUpstream } from "envoy-resilience-filters/harness";
import { modulePath, VERSION } from "envoy-resilience-filters";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
after(closeHttp);

test("Envoy runs path-guard before service-metrics: 403 under /admin, a tagged request upstream", async () => {
  const app = await startUpstream({ statuses: [] });
  const envoy = await startEnvoy({
    config: here("../envoy.yaml"),
    clusters: { app },
    wasm: { "path-guard": here("../build/path-guard.wasm"), "service-metrics": modulePath("service-metrics") },
  });
  try {
    const ok = await request(`${envoy.url()}/orders`);
    assert.equal(ok.status, 200);
    assert.equal(app.requests[0].headers["x-path-guard"], "passed");
    const denied = await request(`${envoy.url()}/admin/users`);
    assert.equal(denied.status, 403);
    assert.equal(app.hits.total, 1, "the denied request never reached the app");
    // The package's module announces the package's version at start.
    await envoy.waitForLog(`resilience filters ${VERSION} (proxy-wasm ABI 0.2.1): starting service-metrics`);
    // Envoy files a module's own metrics under "wasmcustom.".
    await envoy.waitForStat("wasmcustom.path_guard_denied_total", 1);
  } finally {
    await envoy.stop();
    await app.close();
  }
});
