// Opens the mesh report in headless Chromium (Debian `chromium`, or $CHROMIUM_BIN) over the DevTools protocol on a
// pipe (--remote-debugging-pipe: JSON messages ending in NUL on fds 3 and 4, no extra npm package), and says what
// rendered: canvases drawn, charts, console errors and uncaught exceptions; optionally saves a screenshot.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pathToFileURL } from "node:url";

export interface Rendered {
  /** uPlot charts in the page. */
  charts: number;
  canvases: number;
  /** Canvases with at least one painted pixel. */
  painted: number;
  /** Console errors, uncaught exceptions and error log entries, in order. */
  errors: string[];
}

export interface InspectOptions {
  /** Save a PNG of the element matching `screenshotOf` (default: the whole page) here. */
  screenshot?: string;
  screenshotOf?: string;
  width?: number;
  timeoutMs?: number;
}

type Message = { id?: number; method?: string; params?: Record<string, any>; result?: any; error?: { message: string }; sessionId?: string }; // eslint-disable-line @typescript-eslint/no-explicit-any

export async function inspectReport(htmlPath: string, opts: InspectOptions = {}): Promise<Rendered> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const profile = mkdtempSync(join(tmpdir(), "mesh-report-chromium-"));
  const args = ["--headless", "--disable-gpu", "--no-first-run", "--disable-extensions", "--remote-debugging-pipe", `--user-data-dir=${profile}`, "about:blank"];
  // Chromium refuses to run as root with its sandbox on (containers, CI).
  if (process.getuid?.() === 0) args.unshift("--no-sandbox");
  const child = spawn(process.env.CHROMIUM_BIN ?? "chromium", args, { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const out = child.stdio[3] as Writable;
  const input = child.stdio[4] as Readable;
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once("error", (e) => reject(new Error(`cannot run chromium (${e.message}); install Debian's chromium or set CHROMIUM_BIN`)));
    child.once("exit", (code) => reject(new Error(`chromium exited (${code}) before the report was inspected: ${stderr}`)));
  });
  failed.catch(() => undefined);

  let nextId = 1;
  const waiting = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  const listeners: Array<(m: Message) => void> = [];
  let buf = "";
  input.setEncoding("utf8");
  input.on("data", (chunk: string) => {
    buf += chunk;
    let end: number;
    while ((end = buf.indexOf("\0")) >= 0) {
      const m = JSON.parse(buf.slice(0, end)) as Message;
      buf = buf.slice(end + 1);
      if (m.id !== undefined && waiting.has(m.id)) {
        const w = waiting.get(m.id)!;
        waiting.delete(m.id);
        if (m.error) w.reject(new Error(m.error.message));
        else w.resolve(m);
      } else for (const l of listeners) l(m);
    }
  });
  const bounded = <T>(p: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    // Caps a wait on an event (the protocol's answer), as the harness's bounded waits do.
    const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`chromium: no ${what} within ${timeoutMs} ms`)), timeoutMs)));
    return Promise.race([p, limit, failed]).finally(() => clearTimeout(timer));
  };
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const id = nextId++;
    const answer = new Promise<Message>((resolve, reject) => waiting.set(id, { resolve, reject }));
    out.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
    return bounded(answer, `answer to ${method}`).then((m) => m.result);
  };
  const event = (method: string, sessionId: string) =>
    bounded(new Promise<Message>((resolve) => listeners.push((m) => m.method === method && m.sessionId === sessionId && resolve(m))), method);

  const errors: string[] = [];
  try {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
    listeners.push((m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === "Runtime.consoleAPICalled" && (m.params!.type === "error" || m.params!.type === "assert")) {
        errors.push(`console.${m.params!.type}: ${m.params!.args.map((a: { value?: unknown; description?: string }) => a.value ?? a.description).join(" ")}`);
      } else if (m.method === "Runtime.exceptionThrown") {
        const d = m.params!.exceptionDetails;
        errors.push(`exception: ${d.exception?.description ?? d.text}`);
      } else if (m.method === "Log.entryAdded" && m.params!.entry.level === "error") {
        errors.push(`log: ${m.params!.entry.text} ${m.params!.entry.url ?? ""}`.trim());
      }
    });
    for (const domain of ["Runtime", "Log", "Page"]) await send(`${domain}.enable`, {}, sessionId);
    await send("Emulation.setDeviceMetricsOverride", { width: opts.width ?? 1280, height: 900, deviceScaleFactor: 1, mobile: false }, sessionId);
    const loaded = event("Page.loadEventFired", sessionId);
    await send("Page.navigate", { url: pathToFileURL(htmlPath).href }, sessionId);
    await loaded;
    // Two animation frames after load: whatever the charts schedule for their first paint has been painted.
    const { result } = await send("Runtime.evaluate", {
      awaitPromise: true, returnByValue: true,
      expression: `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))).then(() => {
        const canvases = [...document.querySelectorAll("canvas")];
        const painted = canvases.filter((c) => {
          if (c.width === 0 || c.height === 0) return false;
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
          return false;
        }).length;
        return { charts: document.querySelectorAll(".uplot").length, canvases: canvases.length, painted };
      })`,
    }, sessionId);
    if (opts.screenshot) {
      const { result: box } = await send("Runtime.evaluate", {
        returnByValue: true,
        expression: `(() => { const e = ${opts.screenshotOf ? `document.querySelector(${JSON.stringify(opts.screenshotOf)})` : "document.documentElement"};
          const r = e.getBoundingClientRect(); return { x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height }; })()`,
      }, sessionId);
      const shot = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true, clip: { ...box.value, scale: 1 } }, sessionId);
      writeFileSync(opts.screenshot, Buffer.from(shot.data, "base64"));
    }
    return { ...(result.value as Omit<Rendered, "errors">), errors };
  } finally {
    await send("Browser.close").catch(() => child.kill("SIGKILL"));
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(profile, { recursive: true, force: true });
  }
}
