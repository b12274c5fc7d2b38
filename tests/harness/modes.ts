// Which Envoy modes a test file should run: always "process"; "container" when a Docker engine answers.
// ENVOY_MODES=process,container pins the list. REQUIRE_CONTAINER=1 keeps "container" even when no engine
// answers, so its tests fail (startEnvoy names the missing engine) instead of being skipped.
import { pingDocker } from "./docker.js";
import type { EnvoyMode } from "./envoy.js";

let cached: Promise<EnvoyMode[]> | undefined;

async function detect(): Promise<EnvoyMode[]> {
  const pinned = process.env.ENVOY_MODES;
  if (pinned) {
    const modes = pinned.split(",").map((m) => m.trim()).filter(Boolean);
    for (const m of modes) {
      if (m !== "process" && m !== "container") throw new Error(`ENVOY_MODES: unknown mode "${m}" (use process and/or container)`);
    }
    return modes as EnvoyMode[];
  }
  const ping = await pingDocker();
  if (ping.ok) return ["process", "container"];
  if (process.env.REQUIRE_CONTAINER === "1") {
    console.error(`envoyModes: REQUIRE_CONTAINER=1 but no Docker engine at ${ping.where} (${ping.reason}); container tests will fail`);
    return ["process", "container"];
  }
  console.log(
    `envoyModes: SKIPPING container mode: no Docker engine at ${ping.where} (${ping.reason}). ` +
      "Start one with `bash build/docker.sh start` and export the DOCKER_HOST it prints; REQUIRE_CONTAINER=1 makes this a failure.",
  );
  return ["process"];
}

/** The modes to run, decided once per test process. */
export function envoyModes(): Promise<EnvoyMode[]> {
  cached ??= detect();
  return cached;
}
