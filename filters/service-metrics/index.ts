/** Entry of service-metrics.wasm: per-service request counts, error rates and latency histograms. */
import { registerFilter } from "../../assembly/stage";
import { FILTER_NAME } from "./config";
import { buildServiceMetrics } from "./stage";

export * from "../../assembly/exports";

registerFilter(FILTER_NAME, buildServiceMetrics);
