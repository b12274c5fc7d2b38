// Keeps a process's or container's output in memory (newest MAX_CHARS) and lets tests wait for a line.

const MAX_CHARS = 32 * 1024 * 1024;
const POLL_MS = 25;

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
  async waitFor(pattern: string | RegExp, opts: { timeoutMs?: number; since?: number } = {}): Promise<string> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      const line = this.find(pattern, opts.since);
      if (line !== undefined) return line;
      if (Date.now() > deadline) {
        throw new Error(`log line matching ${String(pattern)} not seen within ${opts.timeoutMs ?? 10_000} ms; last lines:\n${this.tail()}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}
