/**
 * Small pure helpers shared by the benchmarks: percentiles, number formatting, markdown rows, and
 * the result shape each bench returns to bench/run.ts.
 */

/** One goal of a benchmark and whether this run met it. */
export interface Goal {
  goal: string;
  met: boolean;
  why: string;
}

/** What every bench's run function returns (plain data: it crosses a process boundary). */
export interface BenchReport {
  title: string;
  /** Markdown: how it was measured. */
  method: string;
  /** Markdown tables and notes. */
  body: string;
  goals: Goal[];
  /** Raw numbers, for scripts. */
  data: unknown;
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export interface Distribution {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function distribution(samples: readonly number[]): Distribution {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN, mean };
}

export const fmt = (n: number, digits = 3): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const mb = (bytes: number): string => fmt(bytes / (1024 * 1024), 1);

/** `| label | baseline | measured | measured/baseline |` */
export function ratioRow(label: string, baseline: number, measured: number, digits = 3): string {
  return `| ${label} | ${fmt(baseline, digits)} | ${fmt(measured, digits)} | ${fmt(measured / baseline, 2)} |`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Peak resident set size and peak V8 heap in use, sampled on a timer (plus whenever `sample()` is called). */
export class RssSampler {
  readonly start: number;
  readonly startHeapUsed: number;
  peak: number;
  peakHeapUsed: number;
  peakHeapTotal: number;
  readonly #timer: NodeJS.Timeout;
  constructor(intervalMs = 10) {
    const m = process.memoryUsage();
    this.start = m.rss;
    this.startHeapUsed = m.heapUsed;
    this.peak = m.rss;
    this.peakHeapUsed = m.heapUsed;
    this.peakHeapTotal = m.heapTotal;
    this.#timer = setInterval(() => this.sample(true), intervalMs);
  }
  /** `full` also reads the V8 heap (costlier than rss alone). */
  sample(full = false): number {
    if (full) {
      const m = process.memoryUsage();
      if (m.heapUsed > this.peakHeapUsed) this.peakHeapUsed = m.heapUsed;
      if (m.heapTotal > this.peakHeapTotal) this.peakHeapTotal = m.heapTotal;
    }
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
    return rss;
  }
  stop(): number {
    clearInterval(this.#timer);
    this.sample(true);
    return this.peak;
  }
}
