import { publicOrigin } from '../../src/http/public-origin';

const configured = 'http://localhost:8080';

describe('publicOrigin', () => {
  it('uses BASE_URL without forwarding headers', () => {
    expect(publicOrigin({}, configured)).toBe(configured);
  });

  it('prefers X-Forwarded-Host with X-Forwarded-Proto (default http)', () => {
    expect(publicOrigin({ forwardedHost: 'bulk.example.org', forwardedProto: 'https' }, configured)).toBe('https://bulk.example.org');
    expect(publicOrigin({ forwardedHost: 'bulk.example.org:8443' }, configured)).toBe('http://bulk.example.org:8443');
    expect(publicOrigin({ forwardedHost: 'a.example, b.example', forwardedProto: 'https, http' }, configured)).toBe('https://a.example');
    expect(publicOrigin({ forwardedHost: 'x.example', forwarded: 'host=y.example;proto=https' }, configured)).toBe('http://x.example');
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
