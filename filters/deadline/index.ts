/** Entry of deadline.wasm: every hop knows the time left, across the application too. */
import { registerFilter } from "../../assembly/stage";
import { FILTER_NAME } from "./config";
import { buildDeadline } from "./stage";

export * from "../../assembly/exports";

registerFilter(FILTER_NAME, buildDeadline);
