// The test harness: real Envoy (process or container), scripted upstreams, HTTP client, stats readers.
//
//   after(closeHttp);
//   for (const mode of await envoyModes()) {
//     const up = await startUpstream({ statuses: [503, 503, 200] });
//     const envoy = await startEnvoy({ config: "envoy-configs/x.yaml", clusters: { "service-a": up },
//                                      wasm: { x: "build/x.wasm" }, mode });
//     const res = await request(`${envoy.url()}/path`, { headers: { "x-a": "1" } });
//     await envoy.stat("cluster.service-a.upstream_rq_retry"); await envoy.promSeries();
//     await envoy.waitForStat("cluster.service-a.upstream_rq_total", 3);   // wait on conditions, never sleep
//     await envoy.stop(); await up.close();
//   }
// Env: ENVOY_BIN (binary), ENVOY_MODE (default mode), ENVOY_MODES (pin the list), REQUIRE_CONTAINER=1,
//      ENVOY_IMAGE (container image), DOCKER_HOST, ENVOY_KEEP_TMP=1 (keep the rewritten configs).
export { startEnvoy, startEnvoyExpectFailure, Envoy, type EnvoyFailure, type EnvoyMode, type LogLevel, type StartEnvoyOptions } from "./envoy.js";
export { envoyModes } from "./modes.js";
export { startUpstream, Upstream, type EchoBody, type UpstreamAction, type UpstreamHits, type UpstreamOptions, type UpstreamRequest } from "./upstream.js";
export { request, closeHttp, type HttpResponse, type RequestOptions } from "./http.js";
export { parsePrometheus, selectSeries, seriesValue, flattenStats, exactStatFilter, type PromSeries, type StatsJson } from "./stats.js";
export { loadBootstrap, rewriteBootstrap, type Bootstrap, type PortLike } from "./config.js";
export { pingDocker, ensureEnvoyImage, containerExists } from "./docker.js";
export { envoyBinaryVersion, resolveEnvoyBinary, pinnedEnvoyVersion, projectRoot } from "./envoy-bin.js";
export { freePorts } from "./ports.js";
export { waitFor, waitUntil, notYet, atLeast, WaitTimeout, WAIT_TIMEOUT_MS, type Accept, type NotYet, type WaitOptions } from "./wait.js";
