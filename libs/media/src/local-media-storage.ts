import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertStorageKey, MediaStorage } from './media-storage';

/** MediaStorage on a local (or mounted, shared) directory. */
export class LocalMediaStorage implements MediaStorage {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  localPath(key: string): string {
    assertStorageKey(key);
    return join(this.root, key);
  }

  async writablePath(key: string): Promise<string> {
    const path = this.localPath(key);
    await mkdir(dirname(path), { recursive: true });
    return path;
  }

  async write(key: string, source: Readable): Promise<number> {
    const path = this.localPath(key);
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${randomUUID().slice(0, 8)}.part`;
    const sink = createWriteStream(temporary, { flags: 'wx' });
    try {
      await pipeline(source, sink);
      await rename(temporary, path);
      return sink.bytesWritten;
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const info = await stat(this.localPath(key));
      return info.isFile() ? info.size : undefined;
    } catch {
      return undefined;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const target = this.localPath(to);
    await mkdir(dirname(target), { recursive: true });
    await rename(this.localPath(from), target);
  }

  async delete(key: string): Promise<void> {
    await rm(this.localPath(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<void> {
    await rm(this.localPath(prefix), { recursive: true, force: true });
  }

  async list(prefix: string): Promise<{ key: string; modifiedAt: Date }[]> {
    const directory = this.localPath(prefix);
    let names: string[];
    try {
      names = await readdir(directory);
    } catch {
      return [];
    }
    const entries = await Promise.all(
      names.map(async (name) => {
        const info = await stat(join(directory, name)).catch(() => undefined);
        return info ? { key: `${prefix}/${name}`, modifiedAt: info.mtime } : undefined;
      }),
    );
    return entries.filter((entry): entry is { key: string; modifiedAt: Date } => entry !== undefined);
  }
}
