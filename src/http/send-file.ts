/** An export file as a download: its type, an attachment name, gzipped when the client accepts it. */
import type { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Context } from 'koa';

export function sendFile(ctx: Context, stream: Readable, fileName: string, contentType: string): void {
  ctx.status = 200;
  ctx.type = contentType;
  ctx.set('Content-Disposition', `attachment; filename="${fileName}"`);
  ctx.vary('Accept-Encoding');
  if (ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
    ctx.set('Content-Encoding', 'gzip');
    ctx.body = stream.pipe(createGzip());
  } else {
    ctx.body = stream;
  }
}
