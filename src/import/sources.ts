import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/** Files under the given paths (directories recursively, in name order). */
export async function expandPaths(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    const info = await stat(p);
    if (info.isDirectory()) {
      const names = (await readdir(p)).sort();
      files.push(...(await expandPaths(names.map((n) => path.join(p, n)))));
    } else {
      files.push(p);
    }
  }
  return files;
}

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** The file's bytes, decompressed when it is gzip (detected by its magic number, not its name). */
export async function openDecompressed(file: string): Promise<Readable> {
  const raw = createReadStream(file);
  return (await isGzip(file)) ? raw.pipe(createGunzip()) : raw;
}

/** NDJSON when the name says so (.ndjson, .jsonl, with or without .gz); one JSON document otherwise. */
export function looksLikeNdjson(file: string): boolean {
  return /\.(ndjson|jsonl)(\.gz)?$/i.test(file);
}

/** Lines of a stream, one at a time, with their 1-based numbers: memory does not grow with the file. */
export async function* numberedLines(stream: Readable): AsyncGenerator<{ line: number; text: string }> {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    yield { line, text };
  }
}

export async function readWhole(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
