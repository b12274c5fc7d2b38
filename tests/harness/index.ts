// The test harness: real Envoy (process or container), scripted upstreams, HTTP client, stats readers.
export { startEnvoy, startEnvoyExpectFailure, Envoy, type EnvoyFailure, type EnvoyMode, type LogLevel, type StartEnvoyOptions } from "./envoy.js";
export { envoyModes } from "./modes.js";
export { startUpstream, Upstream, type EchoBody, type UpstreamAction, type UpstreamHits, type UpstreamOptions, type UpstreamRequest } from "./upstream.js";
export { request, closeHttp, type HttpResponse, type RequestOptions } from "./http.js";
export { parsePrometheus, selectSeries, seriesValue, flattenStats, exactStatFilter, type PromSeries, type StatsJson } from "./stats.js";
export { loadBootstrap, rewriteBootstrap, type Bootstrap, type PortLike } from "./config.js";
export { pingDocker, ensureEnvoyImage, containerExists } from "./docker.js";
export { resolveEnvoyBinary, pinnedEnvoyVersion, projectRoot } from "./envoy-bin.js";
export { freePorts } from "./ports.js";
