import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RunningSystem } from './support/system';
import { waitFor } from './support/wait';

const run = promisify(execFile);

/**
 * The README's five-minute tour, run as written against the whole system (the five apps as built processes), with
 * only the addresses changed to the test system's: a newcomer who copies the commands gets what the comments say.
 */
export function tourBlocks(readme: string): string[] {
  const start = readme.indexOf('## A five-minute tour');
  const end = readme.indexOf('\n## ', start + 1);
  const tour = readme.slice(start, end === -1 ? undefined : end);
  return [...tour.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]);
}

describe('the README tour, as written', () => {
  const system = new RunningSystem();
  const blocks = tourBlocks(readFileSync(join(__dirname, '..', 'README.md'), 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'tour-'));

  beforeAll(async () => {
    await system.start();
  });

  afterAll(async () => {
    await system.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a block in bash (stopping at the first failure), pointed at the test system; returns what it printed. */
  async function runBlock(block: string, after = ''): Promise<string> {
    const script = block
      .replaceAll('http://127.0.0.1:3000', system.apiUrl)
      .replaceAll('http://127.0.0.1:3004', system.notifierUrl)
      // The test system's SMTP server is in-process, not MailDev: the mail is checked below instead.
      .split('\n')
      .filter((line) => !line.includes('127.0.0.1:1080'))
      .join('\n')
      .concat(after);
    const { stdout } = await run(
      'bash',
      ['-c', `set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${script}`],
      {
        cwd: dir,
        timeout: 120_000,
      },
    );
    return stdout;
  }

  it('has the blocks it walks through', () => {
    expect(blocks).toHaveLength(3);
  });

  it('registers a user at once, and the welcome email arrives', async () => {
    const out = await runBlock(blocks[0]);
    expect(out).toMatch(/^HTTP\/1\.1 201/m);
    await waitFor('the welcome email', () => system.smtp.received.some((m) => m.subject === 'Welcome, ann!'));
  });

  it('uploads a video that is processed, and its preview downloads', async () => {
    // The block keeps the id in $VIDEO and the token in $TOKEN; printed after it, to follow the job as its owner.
    const out = await runBlock(blocks[1], '\necho "video id: $VIDEO"\necho "token: $TOKEN"\n');
    expect(out).toMatch(/"status": "(pending|processing|completed)"/);
    const id = /video id: ([0-9a-f-]{36})/.exec(out)?.[1];
    const token = /token: (\S+)/.exec(out)?.[1];
    expect(id).toBeDefined();
    expect(token).toMatch(/^eyJ/);
    const asOwner = { headers: { authorization: `Bearer ${token}` } };
    await waitFor(
      'the video to be processed',
      async () => (await (await fetch(`${system.apiUrl}/videos/${id}`, asOwner)).json()).status === 'completed',
      { timeoutMs: 90_000 },
    );
    // Anyone else is told there is no such video.
    expect((await fetch(`${system.apiUrl}/videos/${id}`)).status).toBe(404);
  });

  it('writes a post: a miss, then 200 on the update', async () => {
    const out = await runBlock(blocks[2]);
    expect(out).toMatch(/x-cache: miss/i);
    expect(out).toMatch(/^HTTP\/1\.1 200/m);
  });
});
