/** Entry of retry-budget.wasm: an adaptive, time-windowed retry budget per destination, shared by all workers. */
import { registerFilter } from "../../assembly/stage";
import { FILTER_NAME } from "./config";
import { buildRetryBudget } from "./stage";

export * from "../../assembly/exports";

registerFilter(FILTER_NAME, buildRetryBudget);
