// Renders what the benchmarks wrote under bench/results/*.json: each chart as SVG (Vega-Lite, rendered here without a
// browser), bench/results/README.md with the machine and a table of every figure, and the same text into
// docs/benchmarks.md between its bench markers. Run by scripts/bench.sh after the benchmarks; `node bench/report.mjs` alone re-renders.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vl from 'vega-lite';

const here = dirname(fileURLToPath(import.meta.url));
// Results elsewhere (BENCH_RESULTS_DIR) are rendered there and leave docs/benchmarks.md alone.
const resultsDir = process.env.BENCH_RESULTS_DIR ?? join(here, 'results');
const updateReadme = process.env.BENCH_RESULTS_DIR === undefined;
const readme = join(here, '..', 'docs', 'benchmarks.md');
const BEGIN = '<!-- bench:begin (written by bench/report.mjs) -->';
const END = '<!-- bench:end -->';

const figures = readdirSync(resultsDir)
  .filter((file) => file.endsWith('.json'))
  .map((file) => JSON.parse(readFileSync(join(resultsDir, file), 'utf8')))
  .sort((a, b) => a.figure - b.figure);
if (figures.length === 0) throw new Error(`no results in ${resultsDir}: run npm run bench first`);

async function render(figure, chart) {
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: chart.title,
    width: 560,
    height: 240,
    data: { values: chart.values },
    config: { font: 'sans-serif', view: { stroke: null }, legend: { labelLimit: 420 } },
    ...chart.spec,
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const file = `${figure.id}-${chart.name}.svg`;
  writeFileSync(join(resultsDir, file), await view.toSVG());
  await view.finalize();
  return file;
}

const number = (value) =>
  Number.isInteger(value) || Math.abs(value) >= 100
    ? value.toFixed(0)
    : Math.abs(value) >= 10
      ? value.toFixed(1)
      : value.toFixed(2);
const cpu = cpus();
const machine = [
  `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'})`,
  `${Math.round(totalmem() / 2 ** 30)} GiB memory`,
  `Node ${process.version}`,
  `Apache Kafka ${process.env.KAFKA_VERSION ?? '(version not given)'} (one KRaft node on loopback)`,
  `PostgreSQL and the SMTP servers on loopback`,
].join(', ');

const lines = [];
const when = figures.map((f) => f.ranAt).sort();
lines.push(
  `Measured ${when[0].slice(0, 16).replace('T', ' ')} – ${when.at(-1).slice(0, 16).replace('T', ' ')} UTC on ${machine}.`,
);
lines.push('');
lines.push('| # | figure | compared | goal | measured | met |');
lines.push('|---|---|---|---|---|---|');
for (const f of figures) {
  for (const r of f.ratios) {
    const value = r.unit && r.unit !== '×' ? `${number(r.value)} ${r.unit}` : `${r.value.toFixed(2)}×`;
    lines.push(
      `| ${f.figure} | [${f.title}](#bench-${f.id}) | ${r.name} | ${r.goal} | ${value} | ${r.met ? 'yes' : '**no**'} |`,
    );
  }
}
for (const f of figures) {
  lines.push('');
  lines.push(`<a id="bench-${f.id}"></a>`);
  lines.push(`**${f.figure}. ${f.title}** (\`npm run bench -- ${f.id}\`, ${f.seconds} s)`);
  lines.push('');
  lines.push('| measured | value |');
  lines.push('|---|---|');
  for (const m of f.measurements) lines.push(`| ${m.label} | ${number(m.value)} ${m.unit} |`);
  for (const note of f.notes ?? []) {
    lines.push('');
    lines.push(note);
  }
  for (const chart of f.charts ?? []) {
    const file = await render(f, chart);
    lines.push('');
    lines.push(`![${chart.title}](bench/results/${file})`);
  }
}
/** Prose lines wrapped at 120 columns (tables and code as they are): the pages read at 120 columns. */
function wrapProse(text) {
  let fenced = false;
  return text
    .split('\n')
    .flatMap((line) => {
      if (line.startsWith('```')) fenced = !fenced;
      if (fenced || line.startsWith('```') || line.trimStart().startsWith('|') || line.length <= 120) return [line];
      const indent = /^(\s*(?:[-*] |\d+\. )?)/.exec(line)[1].replace(/[^ ]/g, ' ');
      const out = [];
      let rest = line;
      while (rest.length > 120) {
        const cut = rest.lastIndexOf(' ', 120);
        if (cut <= indent.length) break;
        out.push(rest.slice(0, cut));
        rest = indent + rest.slice(cut + 1);
      }
      out.push(rest);
      return out;
    })
    .join('\n');
}
const body = wrapProse(lines.join('\n'));

writeFileSync(join(resultsDir, 'README.md'), `# Benchmark results\n\n${body.replaceAll('](bench/results/', '](')}\n`);
if (updateReadme) {
  const text = readFileSync(readme, 'utf8');
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start === -1 || end === -1) throw new Error(`docs/benchmarks.md has no ${BEGIN} … ${END} section`);
  const page = body.replaceAll('](bench/results/', '](../bench/results/');
  writeFileSync(readme, `${text.slice(0, start + BEGIN.length)}\n${page}\n${text.slice(end)}`);
}
process.stdout.write(
  `wrote ${join(resultsDir, 'README.md')}${updateReadme ? ' and docs/benchmarks.md' : ''} (${figures.length} figures)\n`,
);
