import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertSafeKey, type OutputStore } from './output-store';

/** Export files under a local directory. A file is written to a temporary name and renamed when complete. */
export class LocalOutputStore implements OutputStore {
  constructor(private readonly root: string) {}

  private pathOf(key: string): string {
    assertSafeKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  createWriter(key: string) {
    const target = this.pathOf(key);
    const temporary = `${target}.partial-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const stream = new PassThrough();
    const done = (async () => {
      try {
        await mkdir(path.dirname(target), { recursive: true });
        await pipeline(stream, createWriteStream(temporary));
        await rename(temporary, target);
      } catch (err) {
        stream.destroy(err as Error); // a writer waiting for 'drain' hears why (ENOSPC, EIO), not silence
        await rm(temporary, { force: true });
        throw err;
      }
    })();
    return { stream, done };
  }

  async openReader(key: string) {
    const file = this.pathOf(key);
    try {
      if (!(await stat(file)).isFile()) return undefined;
    } catch {
      return undefined;
    }
    return createReadStream(file);
  }

  async openFrom(key: string, start: number) {
    const file = this.pathOf(key);
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    return { stream: createReadStream(file, { start: Math.min(start, info.size) }), size: info.size };
  }

  async move(from: string, to: string): Promise<void> {
    const source = this.pathOf(from);
    const target = this.pathOf(to);
    await mkdir(path.dirname(target), { recursive: true });
    try {
      await rename(source, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !(await stat(target).catch(() => undefined))) throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const dir = this.pathOf(prefix.replace(/\/$/, ''));
    try {
      const names = await readdir(dir);
      return names.filter((n) => !n.includes('.partial-')).map((n) => `${prefix.replace(/\/$/, '')}/${n}`).sort();
    } catch {
      return [];
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    await rm(this.pathOf(prefix.replace(/\/$/, '')), { recursive: true, force: true });
    return keys.length;
  }
}
