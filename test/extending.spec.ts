import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** docs/extending.md walks through changes file by file: every file it names must exist, or the walk is out of date. */
describe('docs/extending.md', () => {
  const root = join(__dirname, '..');
  const page = readFileSync(join(root, 'docs', 'extending.md'), 'utf8');
  const named = [
    ...new Set(
      [...page.matchAll(/`((?:apps|libs|test|scripts|deploy|docs)\/[^`\s]+|nest-cli\.json|docker-compose\.yml)`/g)]
        .map((m) => m[1])
        .filter((path) => !path.includes('<')),
    ),
  ];

  it('names files (the walk-through is about real ones)', () => {
    expect(named.length).toBeGreaterThan(10);
  });

  it.each(named)('%s exists', (path) => {
    expect(existsSync(join(root, path))).toBe(true);
  });
});
