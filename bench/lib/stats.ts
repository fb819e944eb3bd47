/** Latency and rate arithmetic every benchmark shares. */
import type { Chart } from './results';

/** The q-quantile (0–1) of `samples` by the nearest-rank method. */
export function percentile(samples: number[], q: number): number {
  if (samples.length === 0) throw new Error('no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(samples: number[]): Summary {
  return {
    n: samples.length,
    p50: percentile(samples, 0.5),
    p90: percentile(samples, 0.9),
    p99: percentile(samples, 0.99),
    max: Math.max(...samples),
    mean: samples.reduce((sum, s) => sum + s, 0) / samples.length,
  };
}

/**
 * The points of an empirical distribution (latency in ms against the share of samples at or below it), for a
 * distribution chart: at most `points` rows, labelled with `series`.
 */
export function distribution(
  series: string,
  samples: number[],
  points = 100,
): { series: string; ms: number; share: number }[] {
  const sorted = [...samples].sort((a, b) => a - b);
  const step = Math.max(1, Math.floor(sorted.length / points));
  const rows: { series: string; ms: number; share: number }[] = [];
  for (let i = 0; i < sorted.length; i += step)
    rows.push({ series, ms: round(sorted[i]), share: (i + 1) / sorted.length });
  rows.push({ series, ms: round(sorted[sorted.length - 1]), share: 1 });
  return rows;
}

const round = (value: number) => Math.round(value * 100) / 100;

/**
 * A chart of latency distributions side by side: for each series, milliseconds against the share of its samples at
 * or below (step lines), for the report to render.
 */
export function distributionChart(
  name: string,
  title: string,
  series: [label: string, samples: number[]][],
  axes: { x: string; y: string; logScale?: boolean },
): Chart {
  return {
    name,
    title,
    values: series.flatMap(([label, samples]) => distribution(label, samples)),
    spec: {
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'ms', type: 'quantitative', title: axes.x, ...(axes.logScale ? { scale: { type: 'log' } } : {}) },
        y: { field: 'share', type: 'quantitative', title: axes.y },
        color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2 } },
      },
    },
  };
}

/**
 * Runs `task` `concurrency` at a time until `total` have started; resolves with each task's duration in ms, in the
 * order they finished.
 */
export async function inFlight(
  total: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<number[]> {
  const durations: number[] = [];
  let next = 0;
  async function worker(): Promise<void> {
    while (next < total) {
      const i = next++;
      const started = performance.now();
      await task(i);
      durations.push(performance.now() - started);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return durations;
}
