/** Entry of outlier-breaker.wasm: a closed/open/half-open circuit breaker per destination, shared by all workers. */
import { registerFilter } from "../../assembly/stage";
import { FILTER_NAME } from "./config";
import { buildOutlierBreaker } from "./stage";

export * from "../../assembly/exports";
export * from "../../assembly/exports-response";

registerFilter(FILTER_NAME, buildOutlierBreaker);
