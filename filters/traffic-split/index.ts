/** Entry of traffic-split.wasm: header / cookie / sticky-percentage subset routing with automatic rollback. */
import { registerRoot } from "../../assembly/abi/registry";
import { RootContext } from "../../assembly/context";
import { StagedRoot, Stage, StageSetup } from "../../assembly/stage";
import { ConfigReader } from "../../assembly/config";
import { FILTER_NAME, parseConfig } from "./config";
import { hashBytes } from "./core";
import { TrafficSplitStage } from "./stage";

export * from "../../assembly/abi/exports";

class Setup extends StageSetup {
  build(config: ArrayBuffer): Stage[] {
    const r = ConfigReader.fromBytes(config, FILTER_NAME);
    const c = parseConfig(r);
    this.error = r.error;
    // The shared-state key holds a hash of the configuration bytes: a new configuration starts fresh.
    return c !== null ? [changetype<Stage>(new TrafficSplitStage(c, hashBytes(config)))] : [];
  }
}

registerRoot(FILTER_NAME, (id: u32): RootContext => new StagedRoot(id, FILTER_NAME, new Setup()));
