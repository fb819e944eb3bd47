import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(__dirname, '..', '..', '.run', 'test-videos');

export interface TestVideo {
  path: string;
  name: string;
}

/**
 * Makes a test video with ffmpeg's lavfi sources (nothing binary is committed): a test pattern, and a sine tone
 * unless `audio` is false. Small and short unless asked otherwise.
 */
export async function makeVideo(
  name: string,
  {
    seconds = 2,
    size = '320x240',
    audio = true,
    container = 'mp4',
  }: { seconds?: number; size?: string; audio?: boolean; container?: 'mp4' | 'webm' } = {},
): Promise<TestVideo> {
  mkdirSync(root, { recursive: true });
  const path = join(root, `${name}.${container}`);
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=duration=${seconds}:size=${size}:rate=25`,
  ];
  if (audio) args.push('-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`);
  if (container === 'mp4') args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p');
  else args.push('-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8');
  if (audio) args.push('-c:a', container === 'mp4' ? 'aac' : 'libopus', '-shortest');
  args.push(path);
  await run('ffmpeg', args, { timeout: 120_000 });
  return { path, name: `${name}.${container}` };
}

/** A file with arbitrary content, for uploads that must be refused or fail. */
export function makeFile(name: string, content: Buffer | string): TestVideo {
  mkdirSync(root, { recursive: true });
  const path = join(root, name);
  writeFileSync(path, content);
  return { path, name };
}

export interface Probed {
  format: { format_name: string; duration?: string };
  streams: { codec_type: string; codec_name: string; width?: number; height?: number }[];
}

/** Removes the files made by makeVideo and makeFile whose names contain `marker`. */
export function removeTestFiles(marker: string): void {
  if (!existsSync(root)) return;
  for (const name of readdirSync(root)) if (name.includes(marker)) rmSync(join(root, name), { force: true });
}

/** ffprobe's view of a file (or a downloaded body written to a file). */
export async function ffprobe(path: string): Promise<Probed> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-print_format',
    'json',
    '-show_format',
    '-show_streams',
    path,
  ]);
  return JSON.parse(stdout) as Probed;
}

/** ffmpeg processes whose command line mentions `text`, by pid. */
export async function ffmpegProcessesWith(text: string): Promise<number[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,args=']).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .filter((line) => /\bffmpeg\b/.test(line) && line.includes(text) && !line.includes('ps -eo'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}
