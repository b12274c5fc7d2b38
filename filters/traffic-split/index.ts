/** Entry of traffic-split.wasm: header / cookie / sticky-percentage subset routing with automatic rollback. */
import { registerFilter } from "../../assembly/stage";
import { FILTER_NAME } from "./config";
import { buildTrafficSplit } from "./stage";

export * from "../../assembly/exports";

registerFilter(FILTER_NAME, buildTrafficSplit);
