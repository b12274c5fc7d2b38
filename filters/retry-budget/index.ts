/** Entry of retry-budget.wasm: an adaptive, time-windowed retry budget per destination, shared by all workers. */
import { registerRoot } from "../../assembly/abi/registry";
import { RootContext } from "../../assembly/context";
import { StagedRoot, Stage, StageSetup } from "../../assembly/stage";
import { ConfigReader } from "../../assembly/config";
import { FILTER_NAME, parseConfig } from "./config";
import { RetryBudgetStage } from "./stage";

export * from "../../assembly/abi/exports";

class Setup extends StageSetup {
  build(config: ArrayBuffer): Stage[] {
    const r = ConfigReader.fromBytes(config, FILTER_NAME);
    const c = parseConfig(r);
    this.error = r.error;
    return c !== null ? [changetype<Stage>(new RetryBudgetStage(c))] : [];
  }
}

registerRoot(FILTER_NAME, (id: u32): RootContext => new StagedRoot(id, FILTER_NAME, new Setup()));
