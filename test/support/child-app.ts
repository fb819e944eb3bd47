import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { appEnv } from './env';
import { waitFor } from './wait';

const root = join(__dirname, '..', '..');

/**
 * A built app (scripts/test.sh builds it) in its own process, so a test can SIGKILL or SIGTERM it like an
 * orchestrator would. Output goes to .run/test-logs/<name>.log.
 */
export class ChildApp {
  private child?: ChildProcess;
  private output = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;

  /**
   * `app` is a built app's name, or a path (from the project root) to a TypeScript entry run through
   * @swc-node/register, such as a test fixture.
   */
  constructor(
    private readonly app: string,
    private readonly name: string,
    private readonly overrides: Record<string, string>,
  ) {}

  private get command(): string[] {
    return this.app.endsWith('.ts')
      ? ['-r', '@swc-node/register', join(root, this.app)]
      : [join(root, `dist/apps/${this.app}/apps/${this.app}/src/main.js`)];
  }

  async start(readyText: string, timeoutMs = 30_000): Promise<void> {
    const logs = join(root, '.run', 'test-logs');
    mkdirSync(logs, { recursive: true });
    const log = createWriteStream(join(logs, `${this.name}.log`), { flags: 'a' });
    this.output = '';
    this.exitCode = null;
    this.exitSignal = null;
    const child = spawn(process.execPath, this.command, {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...appEnv({ LOG_LEVEL: 'warn', ...this.overrides }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      log.write(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    // 'close', not 'exit': by then everything the process printed has been read.
    child.on('close', (code, signal) => {
      this.exitCode = code;
      this.exitSignal = signal;
      log.end();
    });
    this.child = child;
    await waitFor(`${this.name} to be ready`, () => this.output.includes(readyText) || !this.running, { timeoutMs });
    if (!this.output.includes(readyText)) throw new Error(`${this.name} exited: ${this.output}`);
  }

  /** Everything the process printed since its last start. */
  get printed(): string {
    return this.output;
  }

  /** Sends a signal without waiting: SIGSTOP freezes the process with its sockets open, as a hung host would. */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** The process id of the running app (a per-instance consumer group is named after it). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitCode === null && this.exitSignal === null;
  }

  /** Sends the signal and waits for the process to end; resolves with how long that took. */
  async stop(signal: NodeJS.Signals, timeoutMs = 60_000): Promise<number> {
    const started = Date.now();
    if (!this.running) return 0;
    this.child?.kill('SIGCONT');
    this.child?.kill(signal);
    await waitFor(`${this.name} to exit after ${signal}`, () => !this.running, { timeoutMs, intervalMs: 50 });
    return Date.now() - started;
  }
}
