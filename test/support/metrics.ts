/** Reading a node's `/metrics` in tests. */
import { RestClient } from './http.js';

/** GET /metrics with the node's METRICS_TOKEN; throws unless 200. */
export async function scrapeMetrics(url: string, token: string): Promise<string> {
  const res = await new RestClient(url).get('/metrics', { authorization: `Bearer ${token}` });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.body as string;
}

/** The value of one sample, e.g. sample(text, 'sam_rate_limited_total{scope="socket"}'). */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Every metric name a scrape exports, as it can be queried (histograms as `_bucket`, `_sum`, `_count`). */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (match) names.add(match[1]!);
  }
  return names;
}
