/** What the ops page charts: one entry per chart, read from the rolling window of samples. */
import { formatBytes, formatCount, formatMs, formatRate } from './format';
import type { NodeSample, Sample, Totals } from './ops.svelte';

/** One line drawn for each node (latency draws two). */
interface NodePart {
  /** appended to the node's id in the legend */
  suffix?: string;
  get: (n: NodeSample) => number | null;
  dash?: boolean;
}

export interface ChartSpec {
  id: string;
  title: string;
  /** what the numbers count, for the text alternative */
  unit: string;
  format: (v: number | null) => string;
  /** whole numbers only: the axis never shows a tick between two */
  integer?: boolean;
  parts: NodePart[];
  /** the cluster's figure, drawn when there is more than one node */
  total?: (t: Totals) => number | null;
}

export const chartSpecs: ChartSpec[] = [
  { id: 'sockets', title: 'Sockets', unit: 'sockets connected', format: formatCount, integer: true, parts: [{ get: (n) => n.sockets }], total: (t) => t.sockets },
  { id: 'events', title: 'Events per second', unit: 'client events handled per second', format: formatRate, parts: [{ get: (n) => n.eventsPerSecond }], total: (t) => t.eventsPerSecond },
  {
    id: 'latency',
    title: 'Event latency (p50 / p99)',
    unit: 'milliseconds from receipt to ack',
    format: formatMs,
    parts: [
      { suffix: 'p50', get: (n) => n.eventP50Ms, dash: true },
      { suffix: 'p99', get: (n) => n.eventP99Ms },
    ],
  },
  {
    id: 'handshake-failures',
    title: 'Handshake failures per second',
    unit: 'refused handshakes per second',
    format: formatRate,
    parts: [{ get: (n) => n.handshakeFailuresPerSecond }],
    total: (t) => t.handshakeFailuresPerSecond,
  },
  {
    id: 'rate-limited',
    title: 'Rate-limited per second',
    unit: 'requests refused by a rate limit per second',
    format: formatRate,
    parts: [{ get: (n) => n.rateLimitedPerSecond }],
    total: (t) => t.rateLimitedPerSecond,
  },
  { id: 'generations', title: 'Active generations', unit: 'answers being generated', format: formatCount, integer: true, parts: [{ get: (n) => n.activeStreams }], total: (t) => t.activeStreams },
  {
    id: 'tokens',
    title: 'Output tokens per second',
    unit: 'assistant tokens streamed per second',
    format: formatRate,
    parts: [{ get: (n) => n.outputTokensPerSecond }],
    total: (t) => t.outputTokensPerSecond,
  },
  { id: 'memory', title: 'Memory (RSS)', unit: 'resident memory', format: formatBytes, parts: [{ get: (n) => n.rssBytes }], total: (t) => t.rssBytes },
  { id: 'lag', title: 'Event-loop lag', unit: 'milliseconds of event-loop delay', format: formatMs, parts: [{ get: (n) => n.eventLoopLagMs }] },
];

export interface ChartLine {
  label: string;
  /** one per sample, null where the node did not report */
  values: (number | null)[];
  color: string;
  dash: boolean;
  /** the cluster total, drawn heavier */
  total: boolean;
  /** the latest value, for the legend and the text alternative */
  current: number | null;
}

export interface ChartData {
  spec: ChartSpec;
  /** seconds since epoch, one per sample */
  times: number[];
  lines: ChartLine[];
}

/** Node colours per theme, distinguishable on the app's surfaces; the total takes the text colour. */
const palettes = {
  light: ['#2f5bd3', '#17794a', '#b45309', '#7c3aed', '#0e7490', '#be185d', '#4d7c0f', '#9f1239'],
  dark: ['#7fa2ff', '#6fdc9f', '#fbbf24', '#c4b5fd', '#67e8f9', '#f9a8d4', '#bef264', '#fda4af'],
};
const totalColor = { light: '#1b1f24', dark: '#e6e9ee' };

/** Every node seen in the window, in a stable order (the colour of a node does not change while it reports). */
export function nodeIds(samples: Sample[]): string[] {
  const ids = new Set<string>();
  for (const s of samples) for (const n of s.nodes) ids.add(n.id);
  return [...ids].sort((a, b) => a.localeCompare(b));
}

export function buildCharts(samples: Sample[], theme: 'light' | 'dark'): ChartData[] {
  const ids = nodeIds(samples);
  const times = samples.map((s) => s.t);
  const byNode = samples.map((s) => new Map(s.nodes.map((n) => [n.id, n])));
  const palette = palettes[theme];
  const latest = samples.at(-1);
  return chartSpecs.map((spec) => {
    const lines: ChartLine[] = [];
    ids.forEach((id, i) => {
      const color = palette[i % palette.length]!;
      for (const part of spec.parts) {
        const values = byNode.map((nodes) => {
          const n = nodes.get(id);
          return n ? part.get(n) : null;
        });
        const now = latest?.nodes.find((n) => n.id === id);
        lines.push({ label: part.suffix ? `${id} ${part.suffix}` : id, values, color, dash: part.dash ?? false, total: false, current: now ? part.get(now) : null });
      }
    });
    if (spec.total && ids.length > 1) {
      const total = spec.total;
      lines.push({
        label: 'Total',
        values: samples.map((s) => total(s.totals)),
        color: totalColor[theme],
        dash: false,
        total: true,
        current: latest ? total(latest.totals) : null,
      });
    }
    return { spec, times, lines };
  });
}

/**
 * A colour token as a canvas needs it. The tokens are `light-dark()` pairs
 * (app.css), which only a CSS property resolves, so the token is read through
 * the `color` of a probe element inside `el`.
 */
export function tokenColor(el: HTMLElement, token: string, fallback: string): string {
  const probe = document.createElement('span');
  probe.style.color = `var(${token}, ${fallback})`;
  el.appendChild(probe);
  const color = getComputedStyle(probe).color;
  probe.remove();
  return color || fallback;
}
