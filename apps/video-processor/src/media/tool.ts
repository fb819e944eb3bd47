import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { PermanentError, RetriableError } from '@app/messaging';

/** ffmpeg or ffprobe exited non-zero, was killed, or ran past its timeout: worth another attempt. */
export class ToolFailedError extends RetriableError {
  override readonly name = 'ToolFailedError';
  /** The tool's exit code, when it exited by itself. */
  exitCode?: number;
}

/** The input is not something ffprobe/ffmpeg can read as a video: no attempt will change that. */
export class NotAVideoError extends PermanentError {
  override readonly name = 'NotAVideoError';
}

/** The run was stopped from outside: the app shuts down, or the job's claim passed to another replica. */
export class ToolStoppedError extends Error {
  override readonly name = 'ToolStoppedError';
}

// With setpriv (util-linux), the kernel kills the tool when this process dies, even by SIGKILL: no orphan ffmpeg.
const SETPRIV = '/usr/bin/setpriv';
const withParentDeath = existsSync(SETPRIV);

export interface ToolRun {
  timeoutMs: number;
  signal: AbortSignal;
  /** Each line the tool writes to stdout (ffmpeg's `-progress pipe:1`). */
  onLine?: (line: string) => void;
}

/** Runs ffmpeg or ffprobe; resolves with stdout (unless onLine consumes it) when it exits 0. */
export function runTool(command: string, args: string[], run: ToolRun): Promise<string> {
  return new Promise((resolve, reject) => {
    if (run.signal.aborted) {
      reject(new ToolStoppedError(`${command} not started: ${reasonOf(run.signal)}`));
      return;
    }
    const [file, argv] = withParentDeath ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]] : [command, args];
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let ended: 'timeout' | 'stopped' | undefined;
    const kill = (why: 'timeout' | 'stopped') => {
      ended ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), run.timeoutMs);
    const onAbort = () => kill('stopped');
    run.signal.addEventListener('abort', onAbort, { once: true });
    if (run.onLine) createInterface({ input: child.stdout }).on('line', run.onLine);
    else child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      run.signal.removeEventListener('abort', onAbort);
      reject(new ToolFailedError(`${command} could not start: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      run.signal.removeEventListener('abort', onAbort);
      if (ended === 'stopped') return reject(new ToolStoppedError(`${command} stopped: ${reasonOf(run.signal)}`));
      if (ended === 'timeout')
        return reject(new ToolFailedError(`${command} ran past ${run.timeoutMs} ms and was killed`));
      if (code === 0) return resolve(stdout);
      const last = stderr.trim().split('\n').slice(-3).join(' | ');
      const failure = new ToolFailedError(`${command} exited with ${code ?? signal}: ${last || 'no output'}`);
      if (code !== null) failure.exitCode = code;
      reject(failure);
    });
  });
}

function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : 'stopped';
}
