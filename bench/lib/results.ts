/**
 * What every benchmark writes: one JSON file per figure under bench/results/, read by bench/report.mjs to make the
 * Markdown table and the charts. A figure holds what was measured (each value of the same run), the ratios computed
 * from those values, each against its goal, and the data of its charts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ?? join(__dirname, '..', 'results');

export interface Measurement {
  label: string;
  value: number;
  unit: string;
}

export interface Ratio {
  /** What the ratio compares, e.g. "our consumer ÷ raw kafkajs". */
  name: string;
  value: number;
  /** The goal in words, e.g. "≥ 0.5×". */
  goal: string;
  met: boolean;
  /** `×` for a ratio (the default), or the unit of an absolute goal such as `ms`. */
  unit?: string;
}

/**
 * A chart the report renders with Vega-Lite: `values` are the rows, `spec` the rest of a Vega-Lite unit or layered
 * spec (mark, encoding, layers), without data.
 */
export interface Chart {
  name: string;
  title: string;
  values: Record<string, number | string>[];
  spec: Record<string, unknown>;
}

export interface Figure {
  /** File name and anchor: `request-path`, `consumer-pipeline`, … */
  id: string;
  /** The figure's number in the README's list. */
  figure: number;
  title: string;
  measurements: Measurement[];
  ratios: Ratio[];
  notes?: string[];
  charts?: Chart[];
}

/** Writes the figure to bench/results/<id>.json with when it ran and how long it took. */
export function writeFigure(result: Figure, startedAt: number): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${result.id}.json`);
  const body = { ...result, ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - startedAt) / 1000) };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  process.stdout.write(`\n${result.title}\n`);
  for (const m of result.measurements) process.stdout.write(`  ${m.label.padEnd(64)} ${fmt(m.value)} ${m.unit}\n`);
  for (const r of result.ratios) {
    const value = r.unit && r.unit !== '×' ? `${r.value.toFixed(1)} ${r.unit}` : `${r.value.toFixed(2)}×`;
    process.stdout.write(`  ${r.name.padEnd(64)} ${value}  goal ${r.goal}: ${r.met ? 'met' : 'NOT met'}\n`);
  }
  process.stdout.write(`  → ${file}\n`);
}

function fmt(value: number): string {
  if (Number.isInteger(value) || Math.abs(value) >= 100) return value.toFixed(0);
  return value.toFixed(1);
}

/** A ratio against a goal of at least `min`. */
export const atLeast = (name: string, value: number, min: number): Ratio => ({
  name,
  value,
  goal: `≥ ${min}×`,
  met: value >= min,
});

/** A ratio against a goal of at most `max`. */
export const atMost = (name: string, value: number, max: number): Ratio => ({
  name,
  value,
  goal: `≤ ${max}×`,
  met: value <= max,
});

/** An absolute goal of at most `max` `unit` (e.g. a latency difference in ms, from figures of the same run). */
export const atMostOf = (name: string, value: number, max: number, unit: string): Ratio => ({
  name,
  value,
  goal: `≤ ${max} ${unit}`,
  met: value <= max,
  unit,
});

/** Runs a benchmark's main, exiting non-zero with the stack when it fails. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(
        `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
