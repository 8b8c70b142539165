/**
 * What a trusted proxy says about the client: the origin (scheme://host[:port]) it reached
 * bulkflow at, for every absolute URL bulkflow returns, and the client's address. Read only when
 * the request's TCP peer is a configured proxy (middleware/forwarded.ts); otherwise BASE_URL and
 * the peer address stand. `X-Forwarded-Host` (+ `X-Forwarded-Proto`, default http) wins over
 * `Forwarded` (RFC 7239 `host=`, `proto=`). Of a list, the last value counts: the one the nearest
 * proxy (the trusted one) added; values before it may come from the client. A malformed or
 * injected value is ignored, never echoed.
 */
import { isIP } from 'node:net';
import { plainAddress, type ProxyTrust } from './trusted-proxies';

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const PROTO = /^https?$/i;

export interface ForwardedHeaders {
  forwardedHost?: string;
  forwardedProto?: string;
  forwardedFor?: string;
  forwarded?: string;
}

function items(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter(Boolean);
}

const last = (value: string | undefined): string | undefined => items(value).at(-1);

/** One `Forwarded` element (`for=...;host=example.org;proto=https`) as lower-case keys. */
function parseElement(element: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of element.split(';')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    result[pair.slice(0, at).trim().toLowerCase()] = pair.slice(at + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return result;
}

const originOf = (host: string, proto: string | undefined) => `${proto && PROTO.test(proto) ? proto.toLowerCase() : 'http'}://${host}`;

export function publicOrigin(headers: ForwardedHeaders, configured: string): string {
  const forwardedHost = last(headers.forwardedHost);
  if (forwardedHost && HOST.test(forwardedHost)) return originOf(forwardedHost, last(headers.forwardedProto));
  const element = last(headers.forwarded);
  const forwarded = element ? parseElement(element) : {};
  if (forwarded.host && HOST.test(forwarded.host)) return originOf(forwarded.host, forwarded.proto);
  return configured;
}

/** `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1` → the address; else undefined (`unknown`, `_hidden`). */
function nodeAddress(node: string): string | undefined {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d+)?$/.exec(node);
  const candidate = bracketed ? bracketed[1]! : isIP(node) ? node : node.replace(/:\d+$/, '');
  return isIP(candidate) ? plainAddress(candidate) : undefined;
}

/**
 * The client's address: walking the forwarded chain from the nearest hop back, the first hop
 * that is not a trusted proxy. An untrusted peer is the client itself, whatever it claims.
 */
export function clientAddress(peer: string, headers: ForwardedHeaders, trusted: ProxyTrust): string {
  let client = plainAddress(peer);
  if (!trusted(client)) return client;
  const chain = headers.forwardedFor ? items(headers.forwardedFor) : items(headers.forwarded).map((element) => parseElement(element).for ?? '');
  for (const hop of chain.reverse()) {
    const address = nodeAddress(hop);
    if (!address) break; // an obfuscated or malformed hop: the last address we can vouch for stands
    client = address;
    if (!trusted(client)) break;
  }
  return client;
}
