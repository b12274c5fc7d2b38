// A started Envoy runtime (Runner), the exit hook that cleans up what a crashed test leaves behind, and process mode.
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { removeContainerSync } from "./docker.js";
import { resolveEnvoyBinary } from "./envoy-bin.js";
import { LogBuffer } from "./log-buffer.js";

export const STOP_GRACE_MS = 10_000;

/** A started runtime (process or container), as the rest of the harness sees it. */
export interface Runner {
  readonly logs: LogBuffer;
  readonly pid?: number;
  readonly containerId?: string;
  /** Exit status once the process/container has exited, undefined while it runs. */
  exitCode(): Promise<number | undefined>;
  /** Ends it and removes what it left (container). Idempotent. */
  stop(): Promise<void>;
}

// ---- cleanup of anything a crashed test leaves behind --------------------------------------------------------
export const live = new Set<Runner>();
export const liveTmp = new Set<string>();
let exitHookInstalled = false;
export function track(r: Runner): void {
  live.add(r);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    if (!process.env.ENVOY_KEEP_TMP) for (const dir of liveTmp) rmSync(dir, { recursive: true, force: true });
    for (const runner of live) {
      if (runner.pid !== undefined) {
        try {
          process.kill(runner.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
      if (runner.containerId) removeContainerSync(runner.containerId);
    }
  });
}


/** Removes a launch's temp dir (kept with ENVOY_KEEP_TMP). */
export function removeTmp(dir: string): void {
  liveTmp.delete(dir);
  if (!process.env.ENVOY_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
}

// ---- process mode ---------------------------------------------------------------------------------------------
export function startProcess(configPath: string, args: string[], env: Record<string, string> | undefined): Runner {
  const bin = resolveEnvoyBinary();
  const logs = new LogBuffer();
  const child: ChildProcess = spawn(bin, ["-c", configPath, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let exit: number | undefined;
  const exited = new Promise<void>((resolve) => {
    // "close", not "exit": by then stdout and stderr are drained, so the log is complete.
    child.on("close", (code, signal) => {
      exit = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      resolve();
    });
    child.on("error", (e) => {
      logs.append(`harness: cannot run ${bin}: ${e.message}\n`);
      exit = 127;
      resolve();
    });
  });
  child.stdout!.on("data", (d) => logs.append(d));
  child.stderr!.on("data", (d) => logs.append(d));
  // A forgotten Envoy must not keep the test process alive; the exit hook below kills it.
  child.unref();
  for (const pipe of [child.stdout, child.stderr]) (pipe as unknown as { unref?: () => void }).unref?.();
  const runner: Runner = {
    logs,
    pid: child.pid,
    exitCode: async () => exit,
    async stop() {
      if (exit === undefined) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS); // a grace deadline, not a wait
        await exited;
        clearTimeout(timer);
      }
      live.delete(runner);
    },
  };
  track(runner);
  return runner;
}
