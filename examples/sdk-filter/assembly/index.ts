/**
 * path-guard: a minimal filter built on the envoy-resilience-filters SDK, outside the package's own filters.
 * It answers 403 for requests whose path starts with a configured prefix, tags every other request with a header,
 * and counts both. Configuration: {"denyPrefix": "/admin", "header": "x-path-guard", "value": "passed"}.
 */
import { ConfigReader } from "envoy-resilience-filters/assembly/config";
import { HeaderPair, Str } from "envoy-resilience-filters/assembly/host";
import { Counter } from "envoy-resilience-filters/assembly/metrics";
import { registerFilter, Stage, StageStream } from "envoy-resilience-filters/assembly/stage";
import { H_PATH, StreamView } from "envoy-resilience-filters/assembly/stream";

// Envoy calls only what a module exports: the binding's request-path callbacks.
export * from "envoy-resilience-filters/assembly/exports";

const NAME = "path-guard";

/** Per plugin and worker: the parsed configuration and the metrics, made once in on_configure. */
class PathGuard extends Stage {
  readonly header: Str;
  readonly denied: Counter = new Counter("path_guard_denied_total");
  readonly passed: Counter = new Counter("path_guard_passed_total");

  constructor(readonly denyPrefix: string, header: string, readonly value: string) {
    super();
    this.header = new Str(header);
  }

  get name(): string { return NAME; }
  usesClock(): bool { return false; }
  newStream(view: StreamView): StageStream | null { return new PathGuardStream(this); }
}

/** Per request: one header read, then a local 403 or one header write. */
class PathGuardStream extends StageStream {
  constructor(readonly guard: PathGuard) { super(); }

  onRequest(view: StreamView, nowMs: i64): bool {
    const path = view.requestHeader(H_PATH);
    const g = this.guard;
    if (g.denyPrefix.length > 0 && path !== null && path.startsWith(g.denyPrefix)) {
      g.denied.inc();
      view.reply(403, "path_guard_denied", "denied by path-guard\n", new Array<HeaderPair>());
      return false;
    }
    g.passed.inc();
    view.setRequestHeader(g.header, g.value);
    return true;
  }
}

/** Parses the configuration; a bad field leaves the reader's error set (one critical line, Envoy refuses it). */
function build(r: ConfigReader): Stage | null {
  const denyPrefix = r.string("denyPrefix", "");
  if (denyPrefix.length > 0 && !denyPrefix.startsWith("/")) r.fail("denyPrefix", "expected a path starting with '/', got \"" + denyPrefix + "\"");
  const header = r.string("header", "x-path-guard");
  if (header.length == 0) r.fail("header", "expected a header name, got \"\"");
  const value = r.string("value", "passed");
  r.done();
  return r.error === null ? new PathGuard(denyPrefix, header, value) : null;
}

registerFilter(NAME, build);
