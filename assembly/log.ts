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

  /** Writes "<filter>: <message>" at `level`. */
  at(level: LogLevel, message: string): void {
    if (logEnabled(level)) log(level, this.filter + ": " + message);
  }

  /** Writes "<filter> [<stream id>] <message>" at `level`. */
  atStream(level: LogLevel, view: StreamView, message: string): void {
    if (logEnabled(level)) log(level, this.filter + " [" + view.id.toString() + "] " + message);
  }

  // @ts-ignore: decorator
  @inline critical(message: string): void { this.at(LogLevel.Critical, message); }
  // @ts-ignore: decorator
  @inline warn(message: string): void { this.at(LogLevel.Warn, message); }
  // @ts-ignore: decorator
  @inline info(message: string): void { this.at(LogLevel.Info, message); }
  /** A stream's debug line (the filters' per-request detail). */
  // @ts-ignore: decorator
  @inline debug(view: StreamView, message: string): void { this.atStream(LogLevel.Debug, view, message); }
}
