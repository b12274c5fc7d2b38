// Keeps a process's or container's output in memory (newest MAX_CHARS) and lets tests wait for a line.

import { waitFor, WaitTimeout } from "./wait.js";

const MAX_CHARS = 32 * 1024 * 1024;

export class LogBuffer {
  private text = "";
  private dropped = 0;

  append(chunk: string | Buffer): void {
    this.text += typeof chunk === "string" ? chunk : chunk.toString("utf8");
    if (this.text.length > MAX_CHARS) {
      const cut = this.text.length - MAX_CHARS;
      this.text = this.text.slice(cut);
      this.dropped += cut;
    }
  }

  /** Everything kept so far. */
  all(): string {
    return this.dropped > 0 ? `[... ${this.dropped} earlier characters dropped]\n${this.text}` : this.text;
  }

  /** Total characters seen, for `waitFor(..., { since })`. */
  get length(): number {
    return this.dropped + this.text.length;
  }

  /** The last `lines` lines. */
  tail(lines = 40): string {
    return this.text.split("\n").slice(-lines - 1).join("\n").trimEnd();
  }

  /** The first line matching `pattern` after character offset `since`, or undefined. */
  find(pattern: string | RegExp, since = 0): string | undefined {
    const from = Math.max(0, since - this.dropped);
    const matches = typeof pattern === "string"
      ? (line: string) => line.includes(pattern)
      : (line: string) => ((pattern.lastIndex = 0), pattern.test(line));
    for (const line of this.text.slice(from).split("\n")) {
      if (matches(line)) return line;
    }
    return undefined;
  }

  /** Resolves with the first matching line (after offset `since`); rejects after `timeoutMs` with the log tail. */
  async waitFor(pattern: string | RegExp, opts: { timeoutMs?: number; since?: number; intervalMs?: number } = {}): Promise<string> {
    try {
      return await waitFor(`a log line matching ${String(pattern)}`, () => this.find(pattern, opts.since), opts);
    } catch (e) {
      // The tail is taken once, at the timeout, not on every probe.
      if (e instanceof WaitTimeout) throw new Error(`${e.message.replace(/; last seen: .*$/s, "")}; last lines:\n${this.tail()}`);
      throw e;
    }
  }
}
