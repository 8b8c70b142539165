/**
 * bulkflow as a client of a data provider: the headers each request carries (the provider's
 * `fileRequestHeader`s, and a SMART Backend Services token bulkflow gets for itself with its
 * configured key), every URL checked against the submitter's allow list before it is fetched,
 * and the provider's answers read: a Bulk Data manifest (IG v2 or STU4 shape, partial manifests
 * followed), or a `$export` kick-off polled to its manifest (ping-and-pull).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { ManifestRequest, RemoteFile, RemoteManifest } from '../contracts/bulk-submit';
import { isAllowed, type Submitter } from './submitters';

/** A provider answer that retrying cannot change (a 4xx, a URL off the allow list, a manifest that is not one). */
export class ProviderRefusal extends Error {}

const REQUEST_TIMEOUT_MS = 60_000;

export function checkAllowed(submitter: Submitter, url: string, what: string): void {
  if (!isAllowed(submitter, url)) throw new ProviderRefusal(`${what} ${url} is not under an allowed URL of submitter ${submitter.system}|${submitter.value}`);
}

interface CachedToken {
  token: string;
  expiresAt: number;
}
const tokens = new Map<string, CachedToken>();

/** A bearer token from the provider's authorization server, as a SMART Backend Services client (kept until a minute before it expires). */
async function providerToken(submitter: Submitter, metadataUrl: string, signal?: AbortSignal): Promise<string> {
  const client = submitter.client;
  if (!client) throw new ProviderRefusal(`oauthMetadataUrl was given, but submitter ${submitter.system}|${submitter.value} has no client configured to get a token with`);
  const cacheKey = `${submitter.tenant}|${submitter.system}|${submitter.value}|${metadataUrl}`;
  const cached = tokens.get(cacheKey);
  if (cached && cached.expiresAt > Date.now() + 60_000) return cached.token;
  checkAllowed(submitter, metadataUrl, 'oauthMetadataUrl');
  const metadata = (await (await fetchOk(metadataUrl, { headers: { Accept: 'application/json' }, signal }, 'the authorization metadata')).json()) as { token_endpoint?: unknown };
  if (typeof metadata.token_endpoint !== 'string') throw new ProviderRefusal(`${metadataUrl} names no token_endpoint`);
  checkAllowed(submitter, metadata.token_endpoint, 'token_endpoint');
  const jwk = JSON.parse(readFileSync(client.privateKeyFile, 'utf8')) as JWK;
  const alg = jwk.alg ?? (jwk.kty === 'EC' ? 'ES384' : 'RS384');
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg, kid: jwk.kid, typ: 'JWT' })
    .setIssuer(client.clientId)
    .setSubject(client.clientId)
    .setAudience(metadata.token_endpoint)
    .setExpirationTime('5m')
    .setJti(randomUUID())
    .sign(await importJWK(jwk, alg));
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    scope: client.scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
  const response = await fetchOk(metadata.token_endpoint, { method: 'POST', body, headers: { Accept: 'application/json' }, signal }, 'the token endpoint');
  const answer = (await response.json()) as { access_token?: unknown; expires_in?: unknown };
  if (typeof answer.access_token !== 'string') throw new ProviderRefusal('the token endpoint answered without an access_token');
  const lifetime = typeof answer.expires_in === 'number' ? answer.expires_in : 300;
  tokens.set(cacheKey, { token: answer.access_token, expiresAt: Date.now() + lifetime * 1000 });
  return answer.access_token;
}

/** The headers every request of the manifest carries: the provider's, then bulkflow's own token where it gets one. */
export async function providerHeaders(submitter: Submitter, request: ManifestRequest, signal?: AbortSignal): Promise<Record<string, string>> {
  const headers: Record<string, string> = {};
  for (const [name, value] of request.fileRequestHeaders) headers[name] = value;
  if (request.oauthMetadataUrl) headers.Authorization = `Bearer ${await providerToken(submitter, request.oauthMetadataUrl, signal)}`;
  return headers;
}

/** fetch with a timeout; a 4xx other than 408/429 is a refusal (not retried), a 5xx or a network error is thrown to be retried. */
export async function fetchOk(url: string, init: RequestInit, what: string): Promise<Response> {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const response = await fetch(url, { ...init, redirect: 'manual', signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout });
  if (response.ok) return response;
  await response.body?.cancel();
  const message = `${what} (${url}) answered ${response.status}`;
  if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) throw new ProviderRefusal(message);
  throw new Error(message);
}

/** The files of a Bulk Data manifest: IG v2 (`error`) and STU4 (`outcome`) shapes alike; `link` `next` pages are followed. */
export async function readManifest(submitter: Submitter, url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<RemoteManifest> {
  const files: RemoteFile[] = [];
  let transactionTime: string | undefined;
  let requiresAccessToken = false;
  const seen = new Set<string>();
  for (let page: string | undefined = url; page !== undefined; ) {
    if (seen.has(page)) throw new ProviderRefusal(`the manifest's next links loop back to ${page}`);
    seen.add(page);
    checkAllowed(submitter, page, 'the manifest');
    const body = (await (await fetchOk(page, { headers: { ...headers, Accept: 'application/json' }, signal }, 'the manifest')).json().catch(() => {
      throw new ProviderRefusal(`the manifest at ${page} is not JSON`);
    })) as Record<string, unknown>;
    const output = body.output;
    if (!Array.isArray(output)) throw new ProviderRefusal(`the manifest at ${page} has no output array`);
    transactionTime ??= typeof body.transactionTime === 'string' ? body.transactionTime : undefined;
    requiresAccessToken ||= body.requiresAccessToken === true;
    for (const [i, item] of (output as Array<Record<string, unknown>>).entries()) {
      if (typeof item?.url !== 'string' || typeof item.type !== 'string' || !/^[A-Z][A-Za-z]+$/.test(item.type)) throw new ProviderRefusal(`output[${i}] of the manifest at ${page} needs a url and a resource type`);
      const fileUrl = new URL(item.url, page).href;
      checkAllowed(submitter, fileUrl, `output[${i}]`);
      files.push({ url: fileUrl, type: item.type, ...(typeof item.count === 'number' ? { count: item.count } : {}) });
    }
    const next = Array.isArray(body.link) ? (body.link as Array<{ relation?: unknown; url?: unknown }>).find((l) => l.relation === 'next') : undefined;
    page = typeof next?.url === 'string' ? new URL(next.url, page).href : undefined;
  }
  return { transactionTime, requiresAccessToken, files };
}

/** Ping-and-pull `dynamic`: a `$export` kick-off at `url` (its query as given), answered 202 with the status URL to poll. */
export async function kickOffExport(submitter: Submitter, url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<string> {
  checkAllowed(submitter, url, 'exportUrl');
  const response = await fetchOk(url, { headers: { ...headers, Accept: 'application/fhir+json', Prefer: 'respond-async' }, signal }, 'the export kick-off');
  await response.body?.cancel();
  const location = response.headers.get('content-location');
  if (response.status !== 202 || !location) throw new ProviderRefusal(`the export kick-off at ${url} answered ${response.status} without a Content-Location`);
  const statusUrl = new URL(location, url).href;
  checkAllowed(submitter, statusUrl, 'the export status URL');
  return statusUrl;
}

/** One poll of a provider's export status: its manifest URL once complete (200 with the manifest, or 303 to it), or when to ask again. */
export async function pollExport(submitter: Submitter, statusUrl: string, headers: Record<string, string>, signal?: AbortSignal): Promise<{ manifestUrl: string } | { retryAfterMs: number }> {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const response = await fetch(statusUrl, { headers: { ...headers, Accept: 'application/json' }, redirect: 'manual', signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  await response.body?.cancel();
  if (response.status === 200) return { manifestUrl: statusUrl };
  if (response.status === 303 && response.headers.get('location')) {
    const manifestUrl = new URL(response.headers.get('location')!, statusUrl).href;
    checkAllowed(submitter, manifestUrl, 'the export result');
    return { manifestUrl };
  }
  if (response.status === 202 || response.status === 429 || response.status >= 500) {
    const seconds = Number(response.headers.get('retry-after'));
    return { retryAfterMs: Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) * 1000 : 2000 };
  }
  throw new ProviderRefusal(`the provider's export failed: its status answered ${response.status}`);
}
