/**
 * The origin (scheme://host[:port]) clients reach bulkflow at, for every absolute URL it
 * returns: X-Forwarded-Host (+ X-Forwarded-Proto, default http), else Forwarded (host=, proto=),
 * else the configured BASE_URL. A malformed or injected value is ignored, never echoed.
 */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const PROTO = /^https?$/i;

function first(value: string | undefined): string | undefined {
  const item = value?.split(',')[0]?.trim();
  return item ? item : undefined;
}

/** `Forwarded: for=...;host=example.org;proto=https` → its first element's host and proto. */
function parseForwarded(header: string | undefined): { host?: string; proto?: string } {
  const element = first(header);
  if (!element) return {};
  const result: { host?: string; proto?: string } = {};
  for (const pair of element.split(';')) {
    const [key, raw] = pair.split('=', 2).map((p) => p?.trim());
    if (!key || raw === undefined) continue;
    const value = raw.replace(/^"(.*)"$/, '$1');
    if (key.toLowerCase() === 'host') result.host = value;
    if (key.toLowerCase() === 'proto') result.proto = value;
  }
  return result;
}

export function publicOrigin(headers: { forwardedHost?: string; forwardedProto?: string; forwarded?: string }, configured: string): string {
  const forwardedHost = first(headers.forwardedHost);
  if (forwardedHost && HOST.test(forwardedHost)) {
    const proto = first(headers.forwardedProto);
    return `${proto && PROTO.test(proto) ? proto.toLowerCase() : 'http'}://${forwardedHost}`;
  }
  const forwarded = parseForwarded(headers.forwarded);
  if (forwarded.host && HOST.test(forwarded.host)) {
    return `${forwarded.proto && PROTO.test(forwarded.proto) ? forwarded.proto.toLowerCase() : 'http'}://${forwarded.host}`;
  }
  return configured;
}
