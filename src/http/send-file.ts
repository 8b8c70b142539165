/**
 * An export file as a download: its type, an attachment name, gzipped when the client accepts it.
 * Sent as is, it has a Content-Length and answers a `Range: bytes=N-` request with 206 and the
 * rest of the file, so a client whose connection dropped resumes instead of starting over.
 */
import type { Context } from 'koa';
import { createGzip } from 'node:zlib';
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { OutputStore } from '../output/output-store';

/** The start of a `bytes=N-` range (the one form a resuming client sends); undefined for none, or for a form not served (answered whole). */
function rangeStart(header: string | undefined): number | undefined {
  const match = /^bytes=(\d{1,15})-$/.exec((header ?? '').trim());
  return match ? Number(match[1]) : undefined;
}

/** Sends the file at `key`; 404 when there is none. */
export async function sendStoredFile(ctx: Context, output: OutputStore, key: string, fileName: string, contentType: string): Promise<void> {
  const gzip = ctx.acceptsEncodings('gzip', 'identity') === 'gzip';
  const start = gzip ? undefined : rangeStart(ctx.get('Range'));
  const opened = await output.openFrom(key, start ?? 0);
  if (!opened) throw OperationOutcomeError.notFound('No such file');
  ctx.type = contentType;
  ctx.set('Content-Disposition', `attachment; filename="${fileName}"`);
  ctx.vary('Accept-Encoding');
  if (gzip) {
    ctx.status = 200;
    ctx.set('Content-Encoding', 'gzip');
    ctx.body = opened.stream.pipe(createGzip());
    return;
  }
  ctx.set('Accept-Ranges', 'bytes');
  if (start !== undefined && start >= opened.size && opened.size > 0) {
    opened.stream.destroy();
    ctx.status = 416;
    ctx.set('Content-Range', `bytes */${opened.size}`);
    ctx.body = '';
    return;
  }
  ctx.status = start !== undefined && opened.size > 0 ? 206 : 200;
  if (ctx.status === 206) ctx.set('Content-Range', `bytes ${start}-${opened.size - 1}/${opened.size}`);
  ctx.body = opened.stream;
  ctx.length = opened.size - (ctx.status === 206 ? start! : 0);
}
