import type { Context } from 'koa';
import { OperationOutcomeError } from '../fhir/outcome-error';

const JSON_TYPES = ['application/fhir+json', 'application/json'];

/** Reads a JSON request body (FHIR JSON or plain JSON) up to `limitBytes`, with 4xx errors for anything else. */
export async function readJsonBody(ctx: Context, limitBytes = 1_048_576): Promise<unknown> {
  const type = (ctx.get('Content-Type').split(';')[0] || '').trim().toLowerCase();
  if (!JSON_TYPES.includes(type)) {
    throw new OperationOutcomeError('not-supported', `Content-Type must be application/fhir+json or application/json, got ${JSON.stringify(type)}`, { status: 415 });
  }
  const text = await readBodyText(ctx, limitBytes, () => new OperationOutcomeError('too-costly', `The request body is larger than ${limitBytes} bytes`));
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new OperationOutcomeError('structure', `The request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** The request body as UTF-8 text, refusing (with `tooLarge()`) more than `limitBytes`. */
export async function readBodyText(ctx: Context, limitBytes: number, tooLarge: () => Error): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
