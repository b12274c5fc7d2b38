// recommend-timeouts: per service, the p95 and p99 of resilience_request_duration (ms) from Envoy's
// /stats/prometheus, and a route timeout and deadline a little above p95 (README, "Choosing timeouts").
//   npm run recommend-timeouts -- http://127.0.0.1:15000            (an Envoy admin; /stats/prometheus is added)
//   npm run recommend-timeouts -- scrape.txt [more.txt ...]         (saved scrapes; several Envoys are added up)
// The demo and tests import the functions; the CLI runs only when this file is the entry point.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parsePrometheus, type PromSeries } from "../harness/index.js";

export const HISTOGRAM = "resilience_request_duration";
/** The timeout is p95 plus the larger of 25% and 10 ms ... */
export const MARGIN_RATIO = 0.25;
export const MARGIN_MIN_MS = 10;
/** ... rounded up to a step of 5 ms, 10 ms from 100 ms, 100 ms from 1 s. */
const roundUp = (ms: number): number => {
  const step = ms >= 1000 ? 100 : ms >= 100 ? 10 : 5;
  return Math.ceil(ms / step) * step;
};

export interface Recommendation {
  service: string;
  /** Which reporter's histogram was read (outbound when a scrape has it: what the caller's side waited). */
  reporter: string;
  requests: number;
  p95ms: number;
  p99ms: number;
  /** Route timeout and deadline, in ms. */
  timeoutMs: number;
  /** At most this share of the measured requests was slower than the timeout (an upper bound read from the buckets). */
  aboveTimeout: number;
}

/** Cumulative buckets, upper bound ascending, +Inf last. */
type Buckets = { le: number; count: number }[];

/** The q-quantile of cumulative buckets, interpolated linearly inside its bucket as Prometheus' histogram_quantile
 * does (the first bucket starts at 0; a quantile in +Inf is the highest finite bound). NaN without requests. */
export function quantile(q: number, buckets: Buckets): number {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower;
      return lower + (b.le - lower) * ((rank - below) / (b.count - below || 1));
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}

/** The timeout for a measured p95: p95 + max(25%, 10 ms), rounded up (5 ms steps, 10 ms from 100 ms, 100 ms from 1 s). */
export function suggestTimeout(p95ms: number): number {
  return roundUp(p95ms + Math.max(p95ms * MARGIN_RATIO, MARGIN_MIN_MS));
}

/** Share of requests not known to be under `ms`: all but those in buckets bounded at or below it (an upper bound). */
export function shareAbove(ms: number, buckets: Buckets): number {
  const total = buckets.at(-1)?.count ?? 0;
  const under = buckets.filter((b) => b.le <= ms).at(-1)?.count ?? 0;
  return total === 0 ? 0 : (total - under) / total;
}

/** Recommendations from the series of one or more scrapes; buckets of the same service and reporter are summed. */
export function recommend(series: PromSeries[]): Recommendation[] {
  const byKey = new Map<string, Map<number, number>>();
  for (const s of series) {
    if (s.name !== `${HISTOGRAM}_bucket` || s.labels.destination_service === undefined) continue;
    const key = `${s.labels.destination_service}\u0000${s.labels.reporter ?? ""}`;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    const buckets = byKey.get(key) ?? new Map<number, number>();
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
    byKey.set(key, buckets);
  }
  const all = [...byKey].map(([key, m]) => {
    const [service, reporter] = key.split("\u0000");
    const buckets = [...m].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
    return { service, reporter, buckets };
  });
  // One reporter per service: outbound (the caller's wait, which a route timeout bounds) when there is one.
  const services = [...new Set(all.map((h) => h.service))].sort();
  const out: Recommendation[] = [];
  for (const service of services) {
    const mine = all.filter((h) => h.service === service);
    const h = mine.find((x) => x.reporter === "outbound") ?? mine.sort((a, b) => a.reporter.localeCompare(b.reporter))[0];
    const requests = h.buckets.at(-1)?.count ?? 0;
    if (requests === 0) continue;
    const p95ms = quantile(0.95, h.buckets);
    const timeoutMs = suggestTimeout(p95ms);
    out.push({ service, reporter: h.reporter, requests, p95ms, p99ms: quantile(0.99, h.buckets), timeoutMs, aboveTimeout: shareAbove(timeoutMs, h.buckets) });
  }
  return out;
}

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));
const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))}s`;

/** A markdown table, one row per service. */
export function formatTable(recs: Recommendation[]): string {
  const rows = [
    "| service | reporter | requests | p95 ms | p99 ms | timeout / deadline ms | slower than it (at most) |",
    "|---|---|---:|---:|---:|---:|---:|",
    ...recs.map((r) => `| ${r.service} | ${r.reporter || "-"} | ${r.requests} | ${fmtMs(r.p95ms)} | ${fmtMs(r.p99ms)} | ${r.timeoutMs} | ${(r.aboveTimeout * 100).toFixed(1)}% |`),
  ];
  return rows.join("\n");
}

/** Ready to paste: the deadline stage's `defaults` rules (JSON, in the filter's configuration) and route timeouts (YAML). */
export function formatConfig(recs: Recommendation[]): string {
  const rules = recs.map((r) => `  { "destination": ${JSON.stringify(r.service)}, "ms": ${r.timeoutMs} }`).join(",\n");
  const routes = recs.map((r) => `route: { cluster: ${r.service}, timeout: ${seconds(r.timeoutMs)} }`).join("\n");
  return [
    "# deadline stage (its \"defaults\"; destinations are service-metrics' destination_service names, so give deadline",
    "# the same destinationKey):",
    `"defaults": [\n${rules}\n]`,
    "# route timeouts (on the route to each cluster in route_config):",
    routes,
  ].join("\n");
}

/** Reads one source: an http(s) URL (an Envoy admin base gets /stats/prometheus) or a file ("-" is stdin). */
export async function readScrape(source: string): Promise<string> {
  if (/^https?:\/\//.test(source)) {
    const url = new URL(source);
    if (url.pathname === "/" || url.pathname === "") url.pathname = "/stats/prometheus";
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return res.text();
  }
  return readFileSync(source === "-" ? 0 : source, "utf8");
}

async function main(args: string[]): Promise<number> {
  if (args.length === 0 || args.includes("--help")) {
    console.error("usage: npm run recommend-timeouts -- <envoy admin URL | scrape file | -> [...]");
    return 2;
  }
  const series = (await Promise.all(args.map(readScrape))).flatMap(parsePrometheus);
  const recs = recommend(series);
  if (recs.length === 0) {
    console.error(`no ${HISTOGRAM} histogram with requests in ${args.join(", ")}`);
    return 1;
  }
  console.log(`Timeouts from measured latency (${HISTOGRAM}): p95 + max(${MARGIN_RATIO * 100}%, ${MARGIN_MIN_MS} ms), rounded up\n`);
  console.log(formatTable(recs));
  console.log("\n" + formatConfig(recs));
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
