/** Entry of outlier-breaker.wasm: a closed/open/half-open circuit breaker per destination, shared by all workers. */
import { registerRoot } from "../../assembly/abi/registry";
import { RootContext } from "../../assembly/context";
import { StagedRoot, Stage, StageSetup } from "../../assembly/stage";
import { ConfigReader } from "../../assembly/config";
import { FILTER_NAME, parseConfig } from "./config";
import { OutlierBreakerStage } from "./stage";

export * from "../../assembly/abi/exports";

class Setup extends StageSetup {
  build(config: ArrayBuffer): Stage[] {
    const r = ConfigReader.fromBytes(config, FILTER_NAME);
    const c = parseConfig(r);
    this.error = r.error;
    return c !== null ? [changetype<Stage>(new OutlierBreakerStage(c))] : [];
  }
}

registerRoot(FILTER_NAME, (id: u32): RootContext => new StagedRoot(id, FILTER_NAME, new Setup()));
