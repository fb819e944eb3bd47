export interface Sample {
  /** The sample's own name: a histogram's samples are <family>_bucket, _sum and _count. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_VALUE = '"((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"';
const LABEL = `([a-zA-Z_][a-zA-Z0-9_]*)=${LABEL_VALUE}`;
// Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes "Nan").
const VALUE = '([-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|[-+]?[iI][nN][fF]|[nN][aA][nN])';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? ${VALUE}(?: -?\\d+)?$`);
const META = new RegExp(`^# (HELP|TYPE) (${NAME})(?: (.*))?$`);
const TYPES = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

/**
 * Parses Prometheus text exposition format (version 0.0.4) strictly: every line is a sample, a HELP or TYPE line,
 * or blank; every family has HELP and TYPE before its samples; a histogram's samples are its _bucket (with `le`),
 * _sum and _count. Throws naming the first bad line.
 */
export function parseExposition(text: string): MetricFamily[] {
  const families = new Map<string, MetricFamily>();
  const familyOf = (name: string): MetricFamily => {
    let family = families.get(name);
    if (!family) {
      family = { name, help: '', type: 'untyped', samples: [] };
      families.set(name, family);
    }
    return family;
  };
  const helped = new Set<string>();
  const typed = new Set<string>();
  text.split('\n').forEach((line, index) => {
    const fail = (why: string) => new Error(`line ${index + 1}: ${why}: ${line}`);
    if (line === '') return;
    const meta = META.exec(line);
    if (meta) {
      const [, kind, name, rest = ''] = meta;
      if (kind === 'HELP') {
        familyOf(name).help = rest;
        helped.add(name);
      } else {
        if (!TYPES.includes(rest)) throw fail('unknown type');
        familyOf(name).type = rest as MetricFamily['type'];
        typed.add(name);
      }
      return;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw fail('not exposition format');
    const [, name, labelText = ''] = match;
    const raw = match[match.length - 1].toLowerCase();
    const value = raw.endsWith('inf')
      ? raw.startsWith('-')
        ? -Infinity
        : Infinity
      : raw === 'nan'
        ? NaN
        : Number(raw);
    const labels: Record<string, string> = {};
    for (const pair of labelText.matchAll(new RegExp(LABEL, 'g'))) labels[pair[1]] = pair[2];
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const familyName = typed.has(name) ? name : base;
    if (!typed.has(familyName) || !helped.has(familyName)) throw fail(`${familyName} has no TYPE or HELP before it`);
    const family = familyOf(familyName);
    if (family.type === 'histogram' && name === `${base}_bucket` && labels.le === undefined)
      throw fail('bucket without le');
    family.samples.push({ name, labels, value });
  });
  return [...families.values()];
}

/**
 * The value of the first sample of a family whose labels include `labels`; for a histogram, its _count. Undefined
 * when there is no such series.
 */
export function sampleOf(
  families: MetricFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.find((f) => f.name === name);
  if (!family) return undefined;
  const wanted = family.type === 'histogram' ? `${name}_count` : name;
  const sample = family.samples.find(
    (s) => s.name === wanted && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return sample?.value;
}
