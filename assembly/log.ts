/**
 * A stage's log lines, prefixed the one way every filter writes them: "<filter>: <message>", or for a stream
 * "<filter> [<stream id>] <message>". Each call checks the level before building anything; a caller whose message is
 * built by concatenation asks on(level) first, so nothing is built when the level is off.
 */
import { log, logEnabled } from "./host";
import { LogLevel } from "./abi/types";
import { StreamView } from "./stream";

export class StageLog {
  constructor(readonly filter: string) {}

  /** Whether a line at `level` would be written (Envoy's level for the Wasm logger, refreshed on every tick). */
  // @ts-ignore: decorator
  @inline on(level: LogLevel): bool { return logEnabled(level); }

  /** Writes `message` at `level`, prefixed with the filter and, when given, the stream. */
  at(level: LogLevel, message: string, view: StreamView | null = null): void {
    if (!logEnabled(level)) return;
    log(level, view !== null ? this.filter + " [" + view.id.toString() + "] " + message : this.filter + ": " + message);
  }

  // @ts-ignore: decorator
  @inline critical(message: string, view: StreamView | null = null): void { this.at(LogLevel.Critical, message, view); }
  // @ts-ignore: decorator
  @inline warn(message: string, view: StreamView | null = null): void { this.at(LogLevel.Warn, message, view); }
  // @ts-ignore: decorator
  @inline info(message: string, view: StreamView | null = null): void { this.at(LogLevel.Info, message, view); }
  // @ts-ignore: decorator
  @inline debug(message: string, view: StreamView | null = null): void { this.at(LogLevel.Debug, message, view); }
}
