/**
 * The codec server: what the Temporal Web UI (its codec endpoint setting) and the CLI
 * (`--codec-endpoint`) call to show encrypted payloads in clear to an operator. The remote codec
 * protocol: `POST {endpoint}/decode` or `/encode` with `{"payloads": [{"metadata": {k: base64},
 * "data": base64}]}`, answered in the same shape. Only operators (an admin token) may call it;
 * browsers may from the configured Web UI origins (CORS).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { readJsonBody } from '../read-json-body';
import { OperationOutcomeError } from '../../fhir/outcome-error';

export const CODEC_PATH = '/codec';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function fromJson(body: unknown): Payload[] {
  const payloads = (body as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(payloads)) throw OperationOutcomeError.invalid('The body must be {"payloads": [...]}', 'payloads');
  return payloads.map((item: JsonPayload, i) => {
    const metadata = item?.metadata ?? {};
    const values = [...Object.values(metadata), item?.data ?? ''];
    if (typeof metadata !== 'object' || values.some((v) => typeof v !== 'string' || !BASE64.test(v))) {
      throw OperationOutcomeError.invalid(`payloads[${i}] must have base64 metadata values and data`, `payloads[${i}]`);
    }
    return { metadata: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])), data: Buffer.from(item.data ?? '', 'base64') };
  });
}

const toJson = (payloads: Payload[]) => ({
  payloads: payloads.map((p) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  })),
});

export function codecRouter(deps: { codec: PayloadCodec; corsOrigins: readonly string[] }): Router<AppState> {
  const router = newRouter();
  const allowOrigin = (ctx: Context) => {
    const origin = ctx.get('Origin');
    if (origin && deps.corsOrigins.includes(origin)) {
      ctx.set('Access-Control-Allow-Origin', origin);
      ctx.set('Access-Control-Allow-Credentials', 'true');
      ctx.vary('Origin');
    }
  };
  for (const operation of ['decode', 'encode'] as const) {
    const path = `${CODEC_PATH}/${operation}`;
    // A browser's preflight carries no credentials: it learns only which origins may ask.
    router.options(path, access.public, (ctx) => {
      allowOrigin(ctx);
      ctx.set('Access-Control-Allow-Methods', 'POST');
      ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Namespace');
      ctx.set('Access-Control-Max-Age', '600');
      ctx.status = 204;
    });
    router.post(path, access.admin, async (ctx) => {
      allowOrigin(ctx);
      const payloads = fromJson(await readJsonBody(ctx, 16 * 1024 ** 2));
      let result: Payload[];
      try {
        result = operation === 'decode' ? await deps.codec.decode(payloads) : await deps.codec.encode(payloads);
      } catch (err) {
        throw new OperationOutcomeError('processing', `The payloads could not be ${operation}d: ${(err as Error).message}`);
      }
      ctx.type = 'application/json';
      ctx.body = toJson(result);
    });
  }
  return router;
}
