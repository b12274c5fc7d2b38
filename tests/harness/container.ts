// Envoy in a container (testcontainers, host network): image, copied files, bind mounts, and the boot wait.
import { CONTAINER_CONFIG_DIR } from "./config.js";
import { ensureEnvoyImage, IMAGE_ENVOY_PATH, pingDocker } from "./docker.js";
import { LogBuffer } from "./log-buffer.js";
import { live, STOP_GRACE_MS, track, type Runner } from "./runner.js";
import { notYet, waitFor } from "./wait.js";

const READY_LINE = "starting main dispatch loop";
export const POLL_MS = 100;

/** Only to cap a wait on an event (Promise.race); waits on conditions use waitFor. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startContainer(
  configPath: string,
  files: Array<{ source: string; target: string }>,
  mounts: string[],
  args: string[],
  env: Record<string, string> | undefined,
  timeoutMs: number,
): Promise<Runner> {
  const ping = await pingDocker();
  if (!ping.ok) {
    throw new Error(`container mode: no Docker engine at ${ping.where} (${ping.reason}); run \`bash build/docker.sh start\` and export the DOCKER_HOST it prints`);
  }
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "127.0.0.1";
  const { GenericContainer, getContainerRuntimeClient } = await import("testcontainers");
  const image = await ensureEnvoyImage();
  const logs = new LogBuffer();
  const containerConfig = `${CONTAINER_CONFIG_DIR}/envoy.json`;
  let dockerContainer: { id: string; inspect(): Promise<{ State: { Running: boolean; ExitCode: number; FinishedAt?: string; StartedAt?: string } }> } | undefined;

  let logsEnded: () => void;
  const logsDone = new Promise<void>((resolve) => (logsEnded = resolve));
  const inspectExit = async (): Promise<number | undefined> => {
    if (!dockerContainer) return undefined;
    const info = await dockerContainer.inspect();
    if (info.State.Running) return undefined;
    await Promise.race([logsDone, sleep(2_000)]); // not a fixed wait: the log stream's end, capped at 2 s
    return info.State.ExitCode;
  };

  // Host networking means no mapped port for an HTTP wait: wait for Envoy's own "ready to serve" log line,
  // or for the container to exit (a refused config), and let the caller look at /ready or the exit code.
  const bootWait = {
    timeout: timeoutMs,
    withStartupTimeout(ms: number) {
      this.timeout = ms;
      return this;
    },
    isStartupTimeoutSet: () => true,
    getStartupTimeout() {
      return this.timeout;
    },
    async waitUntilReady(container: NonNullable<typeof dockerContainer>) {
      dockerContainer = container;
      // Ready line or exit, whichever comes first; the caller tells them apart.
      await waitFor(`"${READY_LINE}" in the container log, or its exit`, async () =>
        logs.find(READY_LINE) !== undefined || (await inspectExit()) !== undefined ? true : notYet(logs.tail(3)),
        { timeoutMs: this.timeout, intervalMs: POLL_MS });
    },
  };

  let started: Awaited<ReturnType<InstanceType<typeof GenericContainer>["start"]>>;
  try {
    started = await new GenericContainer(image)
      .withNetworkMode("host")
      .withEntrypoint([IMAGE_ENVOY_PATH])
      .withCommand(["-c", containerConfig, ...args])
      .withEnvironment(env ?? {})
      .withLabels({ "envoy-resilience.harness": "true" })
      .withCopyFilesToContainer([{ source: configPath, target: containerConfig }, ...files])
      .withBindMounts(mounts.map((m) => ({ source: m, target: m, mode: "ro" as const })))
      .withLogConsumer((stream) => {
        stream.on("data", (d: string | Buffer) => logs.append(d));
        stream.on("end", () => logsEnded());
      })
      .withWaitStrategy(bootWait as never)
      .withStartupTimeout(timeoutMs)
      .start();
  } catch (e) {
    throw new Error(`container mode: starting ${image} failed: ${(e as Error).message}\nlast log lines:\n${logs.tail()}`);
  }
  const id = started.getId();
  const client = await getContainerRuntimeClient();
  dockerContainer ??= client.container.getById(id) as unknown as NonNullable<typeof dockerContainer>;
  let stopped = false;
  const runner: Runner = {
    logs,
    containerId: id,
    exitCode: inspectExit,
    async stop() {
      if (stopped) return;
      stopped = true;
      await started.stop({ timeout: STOP_GRACE_MS, remove: true });
      live.delete(runner);
    },
  };
  track(runner);
  return runner;
}
