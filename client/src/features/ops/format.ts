/** How the ops page writes its figures. */

const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const twoDecimals = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export const dash = '—';

export function formatCount(v: number | null): string {
  return v === null ? dash : whole.format(v);
}

/** per second: two decimals under 1, one under 100, whole numbers beyond */
export function formatRate(v: number | null): string {
  if (v === null) return dash;
  if (v === 0) return '0';
  return (v < 1 ? twoDecimals : v < 100 ? oneDecimal : whole).format(v);
}

const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

/** a ratio 0..1 as a percentage */
export function formatRatio(v: number | null): string {
  return v === null ? dash : percent.format(v);
}

export function formatMs(v: number | null): string {
  if (v === null) return dash;
  return `${(v < 10 ? twoDecimals : v < 100 ? oneDecimal : whole).format(v)} ms`;
}

export function formatBytes(v: number | null): string {
  if (v === null) return dash;
  const mib = v / (1024 * 1024);
  if (mib >= 1024) return `${twoDecimals.format(mib / 1024)} GiB`;
  return `${oneDecimal.format(mib)} MiB`;
}

/** "45 s", "12 min", "3 h 05 min", "2 d 4 h" */
export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${String(min % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
