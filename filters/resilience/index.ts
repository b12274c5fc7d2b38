/**
 * Entry of resilience.wasm, the combined module: all five filters as stages of one Wasm filter, in one pass over one
 * StreamView (one VM call per callback instead of five, and shared header reads). Order of the stages:
 *   service-metrics  first, so it also counts what the later stages answer locally
 *   deadline         refuses expired work before anything else spends on it
 *   traffic-split    picks the subset (route re-selected), so the stages after it see the final cluster
 *   outlier-breaker  fails fast for an open destination
 *   retry-budget     last before the router: sets the retry headers for the request that will go upstream
 */
import { registerCombined, StageBuilder } from "../../assembly/stage";
import { buildServiceMetrics } from "../service-metrics/stage";
import { buildDeadline } from "../deadline/stage";
import { buildTrafficSplit } from "../traffic-split/stage";
import { buildOutlierBreaker } from "../outlier-breaker/stage";
import { buildRetryBudget } from "../retry-budget/stage";

export * from "../../assembly/exports";
export * from "../../assembly/exports-response";

registerCombined(
  "resilience",
  ["service-metrics", "deadline", "traffic-split", "outlier-breaker", "retry-budget"],
  [buildServiceMetrics, buildDeadline, buildTrafficSplit, buildOutlierBreaker, buildRetryBudget] as StageBuilder[],
);
