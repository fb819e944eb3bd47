import type { Readable } from 'node:stream';

/**
 * Where uploaded videos and their renditions live, shared by users-api and the video processors (a directory, a
 * volume in compose). Keys are relative, `/`-separated paths. An object store can take its place behind this
 * interface; `localPath` is then a download to a scratch directory, since ffmpeg reads and writes files.
 */
export interface MediaStorage {
  /** Writes the stream under `key` in full or not at all (a temporary name, then a rename); resolves with the size. */
  write(key: string, source: Readable): Promise<number>;
  /** The size of the file at `key`, or undefined when there is none. */
  size(key: string): Promise<number | undefined>;
  /** A path on this machine for tools that read a file. */
  localPath(key: string): string;
  /** A path on this machine for a tool to write `key` to, its directory created. */
  writablePath(key: string): Promise<string>;
  /** Moves a file within storage, replacing what was at `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a missing one is fine. */
  delete(key: string): Promise<void>;
  /** Removes everything under a prefix (a directory). */
  deletePrefix(prefix: string): Promise<void>;
  /** Keys directly under a prefix, with their last change. */
  list(prefix: string): Promise<{ key: string; modifiedAt: Date }[]>;
}

export const MEDIA_STORAGE = Symbol('MEDIA_STORAGE');

/** A storage key is relative, has no `.` or `..` segments and only safe characters. */
export function assertStorageKey(key: string): void {
  if (
    !/^[A-Za-z0-9._\-/]+$/.test(key) ||
    key.startsWith('/') ||
    key.split('/').some((s) => s === '' || s === '.' || s === '..')
  ) {
    throw new Error(`not a valid storage key: ${JSON.stringify(key)}`);
  }
}
