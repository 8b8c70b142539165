import { clientAddress, publicOrigin } from '../../src/http/public-origin';
import { trustedProxies } from '../../src/http/trusted-proxies';

const configured = 'http://localhost:8080';

describe('publicOrigin (headers of a trusted proxy)', () => {
  it('uses BASE_URL without forwarding headers', () => {
    expect(publicOrigin({}, configured)).toBe(configured);
  });

  it('prefers X-Forwarded-Host with X-Forwarded-Proto (default http)', () => {
    expect(publicOrigin({ forwardedHost: 'bulk.example.org', forwardedProto: 'https' }, configured)).toBe('https://bulk.example.org');
    expect(publicOrigin({ forwardedHost: 'bulk.example.org:8443' }, configured)).toBe('http://bulk.example.org:8443');
    expect(publicOrigin({ forwardedHost: 'x.example', forwarded: 'host=y.example;proto=https' }, configured)).toBe('http://x.example');
  });

  it('takes the last value of a list: the one the nearest proxy added, not what the client sent ahead of it', () => {
    expect(publicOrigin({ forwardedHost: 'evil.example, bulk.example.org', forwardedProto: 'http, https' }, configured)).toBe('https://bulk.example.org');
    expect(publicOrigin({ forwarded: 'host=evil.example;proto=http, for=192.0.2.1;host=bulk.example.org;proto=https' }, configured)).toBe('https://bulk.example.org');
    // The nearest proxy named no host: nothing earlier in the list is believed instead.
    expect(publicOrigin({ forwarded: 'host=evil.example, for=192.0.2.1' }, configured)).toBe(configured);
  });

  it('reads Forwarded host= and proto= when there is no X-Forwarded-Host', () => {
    expect(publicOrigin({ forwarded: 'for=192.0.2.60;proto=https;host="bulk.example.org"' }, configured)).toBe('https://bulk.example.org');
    expect(publicOrigin({ forwarded: 'host=[2001:db8::1]:8080' }, configured)).toBe('http://[2001:db8::1]:8080');
  });

  it.each([
    'evil.example/path',
    'user@evil.example',
    'evil.example\r\nSet-Cookie: x=1',
    'evil example',
    '',
    '-bad-.example',
  ])('ignores the malformed host %j', (host) => {
    expect(publicOrigin({ forwardedHost: host }, configured)).toBe(configured);
    expect(publicOrigin({ forwarded: `host=${host}` }, configured)).toBe(configured);
  });

  it('ignores a proto other than http or https', () => {
    expect(publicOrigin({ forwardedHost: 'bulk.example.org', forwardedProto: 'javascript' }, configured)).toBe('http://bulk.example.org');
  });
});

describe('trustedProxies', () => {
  const trusted = trustedProxies(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);

  it('matches single addresses and CIDRs of both families, IPv4 seen through a dual-stack socket too', () => {
    expect(['10.1.2.3', '192.0.2.7', '::ffff:10.9.9.9', '2001:db8::42'].map(trusted)).toEqual([true, true, true, true]);
    expect(['11.0.0.1', '192.0.2.8', '2001:db9::1', '127.0.0.1', '', undefined, 'not-an-ip'].map(trusted)).toEqual([false, false, false, false, false, false, false]);
  });

  it('trusts nobody with an empty list', () => {
    expect(trustedProxies([])('127.0.0.1')).toBe(false);
  });
});

describe('clientAddress', () => {
  const trusted = trustedProxies(['10.0.0.0/8']);

  it('is the TCP peer when the peer is not a trusted proxy, whatever X-Forwarded-For claims', () => {
    expect(clientAddress('203.0.113.5', { forwardedFor: '198.51.100.1' }, trusted)).toBe('203.0.113.5');
    expect(clientAddress('::ffff:203.0.113.5', {}, trusted)).toBe('203.0.113.5');
  });

  it('walks the chain back from a trusted peer to the first hop that is not a trusted proxy', () => {
    // The client forged the first entry; the trusted proxy appended the address it saw.
    expect(clientAddress('10.0.0.2', { forwardedFor: '198.51.100.1, 203.0.113.5, 10.0.0.3' }, trusted)).toBe('203.0.113.5');
    expect(clientAddress('10.0.0.2', { forwarded: 'for=198.51.100.1, for="[2001:db8::5]:4711"' }, trusted)).toBe('2001:db8::5');
    expect(clientAddress('10.0.0.2', { forwarded: 'for=203.0.113.9:80;proto=https' }, trusted)).toBe('203.0.113.9');
  });

  it('stops at an obfuscated or malformed hop: the last address it can vouch for stands', () => {
    expect(clientAddress('10.0.0.2', { forwardedFor: '203.0.113.5, garbage' }, trusted)).toBe('10.0.0.2');
    expect(clientAddress('10.0.0.2', { forwarded: 'for=_hidden' }, trusted)).toBe('10.0.0.2');
  });
});
