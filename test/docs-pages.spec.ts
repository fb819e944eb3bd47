import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/**
 * The README is a front page and docs/ the manual: the front page stays short, every page reads at 120 columns
 * (tables and code blocks aside, which cannot wrap), and every link between them leads somewhere that exists.
 */
const root = join(__dirname, '..');

function pages(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return pages(path);
    return name.endsWith('.md') ? [path] : [];
  });
}

const all = [join(root, 'README.md'), ...pages(join(root, 'docs'))];
const text = (path: string) => readFileSync(path, 'utf8');

/** Lines outside code fences. */
function textLines(markdown: string): { line: string; number: number }[] {
  let fenced = false;
  return markdown.split('\n').flatMap((line, i) => {
    if (line.startsWith('```')) {
      fenced = !fenced;
      return [];
    }
    return fenced ? [] : [{ line, number: i + 1 }];
  });
}

/** Prose lines: outside code fences, tables and image lines (which cannot wrap). */
function proseLines(markdown: string): { line: string; number: number }[] {
  return textLines(markdown).filter(({ line }) => !line.trimStart().startsWith('|') && !line.startsWith('!['));
}

/**
 * GitHub's anchors for a page's headings (lower case, punctuation dropped, spaces to hyphens, repeats numbered) and
 * its `<a id>` anchors.
 */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { line } of textLines(markdown)) {
    for (const id of line.matchAll(/<a (?:id|name)="([^"]+)"/g)) anchors.add(id[1]);
    const heading = /^#{1,6} (.*)$/.exec(line);
    if (!heading) continue;
    const base = heading[1]
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

describe('README and docs/', () => {
  it('the README is a front page of at most 250 lines', () => {
    expect(text(join(root, 'README.md')).split('\n').length).toBeLessThanOrEqual(250);
  });

  it('the manual has the pages the front page names', () => {
    for (const page of [
      'architecture',
      'events',
      'failure-handling',
      'fault-suites',
      'operations',
      'configuration',
      'security',
      'testing',
      'benchmarks',
      'extending',
    ]) {
      expect(existsSync(join(root, 'docs', `${page}.md`))).toBe(true);
    }
  });

  it('no prose line is wider than 120 columns', () => {
    const wide = all.flatMap((path) =>
      proseLines(text(path))
        .filter(({ line }) => [...line].length > 120)
        .map(({ number }) => `${relative(root, path)}:${number}`),
    );
    expect(wide).toEqual([]);
  });

  it('every relative link leads to a file that exists, and to a heading there', () => {
    const broken: string[] = [];
    for (const path of all) {
      for (const { line, number } of textLines(text(path))) {
        for (const match of line.matchAll(/\]\(([^)\s]+)\)/g)) {
          const target = match[1];
          if (/^[a-z]+:/.test(target)) continue;
          const [file, anchor] = target.split('#');
          const resolved = file === '' ? path : join(dirname(path), file);
          const where = `${relative(root, path)}:${number} → ${target}`;
          if (!existsSync(resolved)) broken.push(`${where} (no such file)`);
          else if (anchor && resolved.endsWith('.md') && !anchorsOf(text(resolved)).has(anchor))
            broken.push(`${where} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('anchors follow GitHub: punctuation dropped, repeats numbered', () => {
    expect([...anchorsOf('# Videos: upload and the work queue\n## Logs\n## Logs\n## `npm test` runs')]).toEqual([
      'videos-upload-and-the-work-queue',
      'logs',
      'logs-1',
      'npm-test-runs',
    ]);
  });
});
