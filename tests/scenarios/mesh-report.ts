// What the mesh runs measured (tests/scenarios/mesh.ts), as figures, tables, the verdict on the user's three criteria
// and an HTML report with time series drawn by uPlot (its built file inlined: the report works offline).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BUDGET, CANARY, CLUSTERS, FAILING, POLICY_TITLE, SERVICES, SLA_MS, type Cluster, type Policy, type RunData, type Service } from "./mesh.js";

export interface ServiceRow {
  service: Service;
  requests: number;
  ok: number;
  /** Answers with a 2xx over requests sent. */
  success: number;
  /** Attempts that reached the service: hits at its apps (checkout: stable and canary); down: refused connections. */
  attempts: number;
  attemptsPerRequest: number;
  /** The gateway router's retries to the service's clusters. */
  retries: number;
  /** BUDGET over this run: ratio of the requests plus the per-second floor. */
  retryLimit: number;
  /** Breaker openings (the module's) or enforced ejections (Envoy's) of the service's own cluster. */
  opens: number;
  p50ms: number;
  p99ms: number;
  slaMs: number;
}

export interface CanaryFigures {
  /** When the canary app answered its first error (ms since start), undefined if it never did. */
  errorsBeganMs?: number;
  /** Attempts that reached the canary from its first error on. */
  hitsAfterErrors: number;
  /** Checkout's client requests that failed from the canary's first error on. */
  checkoutFailuresAfter: number;
  /** From its first error to its last hit, when it was rolled back (its weight went to 0); else undefined. */
  rollbackMs?: number;
  /** Its weight at the end (the module's gauge, or the route's fixed weight). */
  weightAtEnd: number;
  opens: number;
}

export interface Verdict { criterion: string; pass: boolean; figure: string }

export interface Summary {
  policy: Policy;
  seconds: number;
  rows: ServiceRow[];
  canary: CanaryFigures;
  /** Clusters whose breaker opened, with the count. */
  opened: Partial<Record<Cluster, number>>;
  verdict: Verdict[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)];
}

const clustersOf = (s: Service): Cluster[] => (s === "checkout" ? ["checkout", CANARY] : [s]);

export function summarize(run: RunData): Summary {
  const last = run.samples.at(-1)!;
  const rows: ServiceRow[] = SERVICES.map((service) => {
    const mine = run.client.filter((c) => c.service === service);
    const ms = mine.map((c) => c.doneMs - c.sentMs).sort((a, b) => a - b);
    const ok = mine.filter((c) => c.status >= 200 && c.status < 300).length;
    const attempts = clustersOf(service).reduce((n, c) => n + (c === "down" ? last.connectFailures.down : run.hits[c].length), 0);
    const retries = clustersOf(service).reduce((n, c) => n + last.retries[c], 0);
    return {
      service, requests: mine.length, ok, success: ok / mine.length, attempts, attemptsPerRequest: attempts / mine.length,
      retries, retryLimit: BUDGET.ratio * mine.length + BUDGET.perSecond * run.seconds, opens: last.opens[service],
      p50ms: percentile(ms, 0.5), p99ms: percentile(ms, 0.99), slaMs: SLA_MS[service],
    };
  });
  const canaryHits = run.hits[CANARY];
  const firstError = canaryHits.find((h) => h.status >= 500);
  const after = firstError ? canaryHits.filter((h) => h.tMs >= firstError.tMs) : [];
  const lastHit = canaryHits.at(-1)?.tMs ?? 0;
  const canary: CanaryFigures = {
    errorsBeganMs: firstError?.tMs, hitsAfterErrors: after.length,
    checkoutFailuresAfter: firstError ? run.client.filter((c) => c.service === "checkout" && c.doneMs >= firstError.tMs && !(c.status >= 200 && c.status < 300)).length : 0,
    rollbackMs: firstError && last.canaryWeight === 0 ? lastHit - firstError.tMs : undefined,
    weightAtEnd: last.canaryWeight, opens: last.opens[CANARY],
  };
  const opened: Summary["opened"] = {};
  for (const c of CLUSTERS) if (last.opens[c] > 0) opened[c] = last.opens[c];
  return { policy: run.policy, seconds: run.seconds, rows, canary, opened, verdict: verdictOf(rows, opened) };
}

function verdictOf(rows: ServiceRow[], opened: Summary["opened"]): Verdict[] {
  const over = rows.filter((r) => r.retries > r.retryLimit);
  const worstRetry = [...rows].sort((a, b) => b.retries / b.retryLimit - a.retries / a.retryLimit)[0];
  const retry: Verdict = {
    criterion: "retries under the limit",
    pass: over.length === 0,
    figure: (over.length ? `over at ${over.map((r) => `${r.service} ${r.retries} > ${r.retryLimit.toFixed(0)}`).join(", ")}` : `highest ${worstRetry.service} ${worstRetry.retries} of ${worstRetry.retryLimit.toFixed(0)}`) +
      ` (limit ${BUDGET.ratio * 100}% of requests + ${BUDGET.perSecond}/s per service)`,
  };
  const missing = FAILING.filter((s) => !opened[s]);
  const wrong = (Object.keys(opened) as Cluster[]).filter((c) => !FAILING.includes(c as Service));
  const fmt = (cs: Cluster[]) => cs.map((c) => `${c} ${opened[c] ?? 0}`).join(", ");
  const breakers: Verdict = {
    criterion: "breakers only for truly failing services",
    pass: missing.length === 0 && wrong.length === 0,
    figure: [
      `opened: ${fmt(Object.keys(opened) as Cluster[]) || "none"}`,
      missing.length ? `never opened for failing ${missing.join(", ")}` : "",
      wrong.length ? `opened for ${wrong.join(", ")}, not failing` : "",
    ].filter(Boolean).join("; "),
  };
  const late = rows.filter((r) => !(r.p99ms <= r.slaMs));
  const worstLat = [...rows].sort((a, b) => b.p99ms / b.slaMs - a.p99ms / a.slaMs)[0];
  const latency: Verdict = {
    criterion: "latency within SLA (p99, every answer)",
    pass: late.length === 0,
    figure: late.length ? late.map((r) => `${r.service} p99 ${r.p99ms.toFixed(0)} ms > ${r.slaMs}`).join(", ") : `closest ${worstLat.service} p99 ${worstLat.p99ms.toFixed(0)} ms of ${worstLat.slaMs}`,
  };
  return [retry, breakers, latency];
}

const pct = (x: number) => `${(x * 100).toFixed(x >= 0.9995 && x < 1 ? 2 : 1)}%`;
const secs = (ms: number | undefined) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);

/** One markdown table per run, then the canary line and the verdict. */
export function formatSummary(s: Summary): string {
  const lines = [
    `### ${s.policy}: ${POLICY_TITLE[s.policy]} (${s.seconds.toFixed(1)} s)`,
    "",
    "| service | requests | success | upstream attempts | per request | retries / limit | breaker opens | p50 ms | p99 ms | SLA ms |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...s.rows.map((r) =>
      `| ${r.service} | ${r.requests} | ${pct(r.success)} | ${r.attempts} | ${r.attemptsPerRequest.toFixed(2)} | ${r.retries} / ${r.retryLimit.toFixed(0)} | ${r.opens} | ${r.p50ms.toFixed(0)} | ${r.p99ms.toFixed(0)} | ${r.slaMs} |`),
    "",
    `canary (${CANARY}): errors began at ${secs(s.canary.errorsBeganMs)}; after that ${s.canary.hitsAfterErrors} attempts reached it and ` +
      `${s.canary.checkoutFailuresAfter} checkout requests failed; ` +
      (s.canary.rollbackMs === undefined ? "never rolled back" : `rolled back: its last request ${secs(s.canary.rollbackMs)} after its first error`) +
      `; weight at the end ${s.canary.weightAtEnd}%; its breaker opened ${s.canary.opens} times`,
    "",
    ...s.verdict.map((v) => `${v.pass ? "PASS" : "FAIL"}  ${v.criterion}: ${v.figure}`),
  ];
  return lines.join("\n");
}

// ---- time series ----------------------------------------------------------------------------------------------
export interface Chart { title: string; unit: string; names: string[]; data: Array<Array<number | null>>; dashed?: string[] }
export interface RunCharts { policy: Policy; title: string; x: number[]; charts: Chart[] }

const BUCKET_MS = 500;

export function timeSeries(run: RunData): RunCharts {
  const n = Math.ceil((run.seconds * 1000) / BUCKET_MS) + 1;
  const x = Array.from({ length: n }, (_, i) => (i * BUCKET_MS) / 1000);
  const zero = () => new Array<number>(n).fill(0);
  const at = (ms: number) => Math.max(0, Math.min(n - 1, Math.floor(ms / BUCKET_MS)));
  const perSecond = (v: number[]) => v.map((c) => (c * 1000) / BUCKET_MS);

  const sent = Object.fromEntries(SERVICES.map((s) => [s, zero()])) as Record<Service, number[]>;
  const errors = Object.fromEntries(SERVICES.map((s) => [s, zero()])) as Record<Service, number[]>;
  const latencies = Object.fromEntries(SERVICES.map((s) => [s, Array.from({ length: n }, () => [] as number[])])) as Record<Service, number[][]>;
  for (const c of run.client) {
    sent[c.service][at(c.sentMs)]++;
    if (c.status < 200 || c.status >= 300) errors[c.service][at(c.doneMs)]++;
    latencies[c.service][at(c.sentMs)].push(c.doneMs - c.sentMs);
  }
  const attempts = Object.fromEntries(CLUSTERS.map((c) => [c, zero()])) as Record<Cluster, number[]>;
  for (const c of CLUSTERS) if (c !== "down") for (const h of run.hits[c]) attempts[c][at(h.tMs)]++;

  // Gateway counters and gauges: the last sample in each bucket (counters as differences between buckets).
  const sampleAt: Array<RunData["samples"][number] | undefined> = new Array(n).fill(undefined);
  for (const s of run.samples) sampleAt[at(s.tMs)] = s;
  for (let i = 1; i < n; i++) sampleAt[i] ??= sampleAt[i - 1];
  const counter = (get: (s: RunData["samples"][number]) => number) =>
    sampleAt.map((s, i) => (s === undefined ? 0 : Math.max(0, get(s) - (i > 0 && sampleAt[i - 1] ? get(sampleAt[i - 1]!) : 0))));
  const downRefused = counter((s) => s.connectFailures.down);
  for (let i = 0; i < n; i++) attempts.down[i] = downRefused[i];
  const retries = counter((s) => CLUSTERS.reduce((sum, c) => sum + s.retries[c], 0));
  const budget = SERVICES.map((s) => perSecond(sent[s]).map((r) => BUDGET.ratio * r + BUDGET.perSecond)).reduce((a, b) => a.map((v, i) => v + b[i]));
  const gauge = (get: (s: RunData["samples"][number]) => number) => sampleAt.map((s) => (s === undefined ? null : get(s)));
  const canaryShare = attempts[CANARY].map((c, i) => {
    const all = c + attempts.checkout[i];
    return all === 0 ? null : (100 * c) / all;
  });
  const p99 = (s: Service) => latencies[s].map((l) => (l.length === 0 ? null : (100 * percentile(l.sort((a, b) => a - b), 0.99)) / SLA_MS[s]));

  return {
    policy: run.policy, title: POLICY_TITLE[run.policy], x,
    charts: [
      { title: "Requests sent per second (open loop)", unit: "req/s", names: [...SERVICES], data: SERVICES.map((s) => perSecond(sent[s])) },
      { title: "Errors (non-2xx answers) per second", unit: "req/s", names: [...SERVICES], data: SERVICES.map((s) => perSecond(errors[s])) },
      { title: "Upstream attempts per second (at the apps; down: refused connections)", unit: "attempts/s", names: [...CLUSTERS], data: CLUSTERS.map((c) => perSecond(attempts[c])) },
      { title: "Retries per second vs the retry limit", unit: "retries/s", names: ["retries", "limit (20% + 10/s per service)"], data: [perSecond(retries), budget], dashed: ["limit (20% + 10/s per service)"] },
      { title: `Breaker state (${run.policy === "native" ? "hosts ejected" : "0 closed, 1 open, 2 half-open"})`, unit: "state", names: [...CLUSTERS], data: CLUSTERS.map((c) => gauge((s) => s.breaker[c])) },
      { title: "Canary: configured weight and measured share of checkout's attempts", unit: "%", names: ["weight", "measured share"], data: [gauge((s) => s.canaryWeight), canaryShare] },
      { title: "p99 latency as % of each service's SLA (100 = the SLA)", unit: "% of SLA", names: [...SERVICES, "SLA"], data: [...SERVICES.map(p99), x.map(() => 100)], dashed: ["SLA"] },
    ],
  };
}

// ---- HTML -----------------------------------------------------------------------------------------------------
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function tableHtml(s: Summary): string {
  const head = ["service", "requests", "success", "upstream attempts", "per request", "retries / limit", "breaker opens", "p50 ms", "p99 ms", "SLA ms"];
  const rows = s.rows.map((r) => [
    r.service, String(r.requests), pct(r.success), String(r.attempts), r.attemptsPerRequest.toFixed(2), `${r.retries} / ${r.retryLimit.toFixed(0)}`,
    String(r.opens), r.p50ms.toFixed(0), `<span class="${r.p99ms <= r.slaMs ? "ok" : "bad"}">${r.p99ms.toFixed(0)}</span>`, String(r.slaMs),
  ]);
  const canaryLine = formatSummary(s).split("\n").find((l) => l.startsWith("canary"))!;
  return [
    `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>`,
    ...rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`),
    "</tbody></table>",
    `<p>${escape(canaryLine)}</p>`,
    "<ul class=\"verdict\">",
    ...s.verdict.map((v) => `<li class="${v.pass ? "ok" : "bad"}"><b>${v.pass ? "PASS" : "FAIL"}</b> ${escape(v.criterion)}: ${escape(v.figure)}</li>`),
    "</ul>",
  ].join("\n");
}

/** Writes the report to `path`: the three runs' tables, verdicts and charts in one self-contained file. */
export function writeReport(path: string, runs: RunData[], summaries: Summary[], scenario: string): void {
  const template = readFileSync(join(here, "report", "template.html"), "utf8");
  const uplotDir = dirname(require.resolve("uplot/dist/uPlot.iife.min.js"));
  const sections = summaries.map((s) => `<section id="${s.policy}"><h2>${escape(s.policy)}: ${escape(POLICY_TITLE[s.policy])}</h2>\n${tableHtml(s)}\n<div class="charts" data-run="${s.policy}"></div></section>`);
  const data = runs.map(timeSeries);
  // "</" cannot appear inside the inline script: the data is JSON, so escape it there.
  const json = JSON.stringify(data).replace(/<\//g, "<\\/");
  const html = template
    .replace("/*UPLOT_CSS*/", () => readFileSync(join(uplotDir, "uPlot.min.css"), "utf8"))
    .replace("/*UPLOT_JS*/", () => readFileSync(join(uplotDir, "uPlot.iife.min.js"), "utf8"))
    .replace("/*RUNS_JSON*/", () => json)
    .replace("<!--SCENARIO-->", () => escape(scenario))
    .replace("<!--SECTIONS-->", () => sections.join("\n"));
  writeFileSync(path, html);
}
