import { proxy_log, proc_exit } from "./imports";
import { LogLevel } from "./types";

/**
 * The module's `abort` (asc `--use abort=assembly/abi/abort/abortHandler`): Envoy provides no `env.abort`,
 * so a trap explains itself through proxy_log at critical level, then exits. proc_exit only logs in Envoy,
 * hence the `unreachable` that actually stops the VM.
 */
export function abortHandler(message: string | null = null, fileName: string | null = null, line: u32 = 0, column: u32 = 0): void {
  let text = "abort: " + (message !== null ? message : "(no message)");
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  const buf = String.UTF8.encode(text);
  proxy_log(LogLevel.Critical, changetype<usize>(buf), <usize>buf.byteLength);
  proc_exit(255);
  unreachable();
}
