/**
 * The providers a tenant accepts submissions from (BULK_SUBMITTERS_FILE), and the checks every
 * URL of a submission passes: a manifest, its files, its metadata and token endpoints, and a
 * ping-and-pull export are fetched only under one of the submitter's allowed URL prefixes, so a
 * submission cannot make the recipient reach anything else (its own network, another tenant's provider).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SubmitterRef } from '../contracts/bulk-submit';

/** How bulkflow authenticates to a provider as a SMART Backend Services client. */
export interface ProviderClient {
  clientId: string;
  /** A private JWK (with `kid` and `alg`, RS384 or ES384) in a file; the provider has its public half. */
  privateKeyFile: string;
  scope: string;
}

export interface Submitter extends SubmitterRef {
  tenant: string;
  /** Clients (token `owner`s) allowed to submit as this submitter; absent: any client with `system/*.cu`. */
  clientIds?: string[];
  /** URL prefixes every URL of its submissions must start with (scheme, host, port and a path prefix). */
  allowedUrls: string[];
  client?: ProviderClient;
}

export class SubmitterError extends Error {}

function fail(file: string, message: string): never {
  throw new SubmitterError(`${file}: ${message}`);
}

/** Each allowed URL must be absolute http(s) and end its host part: `https://a.example` may not match `https://a.example.evil`. */
function allowedPrefix(file: string, value: unknown): string {
  if (typeof value !== 'string') fail(file, 'allowedUrls must hold strings');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(file, `${value} is not an absolute URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(file, `${value}: only http(s) URLs may be allowed`);
  if (url.search || url.hash || url.username) fail(file, `${value}: an allowed URL is a prefix of scheme, host and path only`);
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

/** Reads and checks the file; paths of key files are relative to it. */
export function loadSubmitters(file: string): Submitter[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    fail(file, (err as Error).message);
  }
  const list = (parsed as { submitters?: unknown })?.submitters;
  if (!Array.isArray(list)) fail(file, 'expected {"submitters": [...]}');
  const seen = new Set<string>();
  return list.map((entry: Record<string, unknown>, i) => {
    const where = `submitters[${i}]`;
    for (const key of ['tenant', 'system', 'value'] as const) if (typeof entry?.[key] !== 'string' || entry[key] === '') fail(file, `${where}.${key} must be a non-empty string`);
    const id = `${String(entry.tenant)}|${String(entry.system)}|${String(entry.value)}`;
    if (seen.has(id)) fail(file, `${where} repeats submitter ${String(entry.system)}|${String(entry.value)} of tenant ${String(entry.tenant)}`);
    seen.add(id);
    if (!Array.isArray(entry.allowedUrls) || entry.allowedUrls.length === 0) fail(file, `${where}.allowedUrls must list at least one URL prefix`);
    if (entry.clientIds !== undefined && (!Array.isArray(entry.clientIds) || entry.clientIds.some((c) => typeof c !== 'string'))) fail(file, `${where}.clientIds must list strings`);
    const client = entry.client as Record<string, unknown> | undefined;
    if (client !== undefined && (typeof client.clientId !== 'string' || typeof client.privateKeyFile !== 'string')) fail(file, `${where}.client needs clientId and privateKeyFile`);
    return {
      tenant: String(entry.tenant),
      system: String(entry.system),
      value: String(entry.value),
      clientIds: entry.clientIds as string[] | undefined,
      allowedUrls: entry.allowedUrls.map((u) => allowedPrefix(file, u)),
      client: client && {
        clientId: String(client.clientId),
        privateKeyFile: path.resolve(path.dirname(file), String(client.privateKeyFile)),
        scope: typeof client.scope === 'string' ? client.scope : 'system/*.read',
      },
    };
  });
}

/** The configured submitters, looked up as requests name them. */
export class Submitters {
  constructor(readonly all: readonly Submitter[]) {}

  find(tenant: string, ref: SubmitterRef): Submitter | undefined {
    return this.all.find((s) => s.tenant === tenant && s.system === ref.system && s.value === ref.value);
  }

  /** The tenant's submitter whose allowed URLs hold `url` (the `$import` ping-and-pull source). */
  forUrl(tenant: string, url: string): Submitter | undefined {
    return this.all.find((s) => s.tenant === tenant && isAllowed(s, url));
  }
}

/** Whether `url` is under one of the submitter's allowed prefixes (after URL normalisation: no `..` or case tricks). */
export function isAllowed(submitter: Pick<Submitter, 'allowedUrls'>, url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.username || parsed.password) return false;
  const href = parsed.href;
  return submitter.allowedUrls.some((prefix) => href.startsWith(prefix) || `${href}/` === prefix);
}
