// Envoy admin stats: /stats?format=json flattened to name → value, and /stats/prometheus text parsed into series.

/** One sample line of the Prometheus text format. */
export interface PromSeries {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Shape of Envoy's /stats?format=json: counters and gauges as {name, value}, histograms in one entry. */
export interface StatsJson {
  stats: Array<{ name: string; value: number } | { histograms: unknown }>;
}

/** Counters and gauges of a /stats?format=json answer, by name. Histograms are left out. */
export function flattenStats(json: StatsJson): Record<string, number> {
  if (!json || !Array.isArray(json.stats)) throw new Error(`stats JSON has no "stats" array: ${JSON.stringify(json).slice(0, 200)}`);
  const out: Record<string, number> = {};
  for (const s of json.stats) {
    if ("name" in s && typeof s.value === "number") out[s.name] = s.value;
  }
  return out;
}

/** An RE2 pattern matching exactly `name` (for the admin `filter=` parameter). */
export function exactStatFilter(name: string): string {
  return `^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`;
}

function parseValue(text: string, line: string): number {
  switch (text) {
    case "+Inf":
      return Infinity;
    case "-Inf":
      return -Infinity;
    case "NaN":
      return NaN;
  }
  const v = Number(text);
  if (text === "" || Number.isNaN(v)) throw new Error(`Prometheus line has no numeric value: ${JSON.stringify(line)}`);
  return v;
}

/** Parses `name{label="value",...} value [timestamp]` lines; comments and blank lines are skipped. */
export function parsePrometheus(text: string): PromSeries[] {
  const out: PromSeries[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nameMatch) throw new Error(`Prometheus line does not start with a metric name: ${JSON.stringify(line)}`);
    const name = nameMatch[0];
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === "{") {
      i++;
      for (;;) {
        while (line[i] === " " || line[i] === ",") i++;
        if (line[i] === "}") {
          i++;
          break;
        }
        const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
        if (!key || line[i + key[0].length] !== "=" || line[i + key[0].length + 1] !== '"') {
          throw new Error(`Prometheus line has a malformed label at column ${i}: ${JSON.stringify(line)}`);
        }
        i += key[0].length + 2;
        let value = "";
        for (; i < line.length && line[i] !== '"'; i++) {
          if (line[i] === "\\") {
            i++;
            value += line[i] === "n" ? "\n" : line[i];
          } else {
            value += line[i];
          }
        }
        if (i >= line.length) throw new Error(`Prometheus line has an unterminated label value: ${JSON.stringify(line)}`);
        i++; // closing quote
        labels[key[0]] = value;
      }
    }
    const [valueText] = line.slice(i).trim().split(/\s+/);
    out.push({ name, labels, value: parseValue(valueText ?? "", line) });
  }
  return out;
}

/** Series named `name` whose labels include every given label (others may be present). */
export function selectSeries(series: PromSeries[], name: string, labels: Record<string, string> = {}): PromSeries[] {
  return series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one series matching; undefined when none does; throws when several do. */
export function seriesValue(series: PromSeries[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = selectSeries(series, name, labels);
  if (found.length > 1) {
    throw new Error(`${name}${JSON.stringify(labels)} matches ${found.length} series: ${found.map((s) => JSON.stringify(s.labels)).join(" ")}`);
  }
  return found[0]?.value;
}
