/**
 * An HTTP proxy that misbehaves like a storage service under trouble: in front of
 * fake-gcs-server, versitygw or Azurite it answers a share of requests with 503, resets a share of connections
 * without an answer, and holds a share of answers back longer than the client waits. The rest
 * pass through untouched. Counts what it did, so a test can show the faults happened.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultRates {
  /** Answered 503 at once, the request body unread. */
  unavailable: number;
  /** The connection destroyed without an answer. */
  reset: number;
  /** The upstream answer delayed by `slowMs` before it is passed on. */
  slow: number;
  slowMs: number;
  /** The body of an injected 503 (GCS JSON by default; S3 and Azure answer XML their SDKs read as throttling). */
  unavailableBody?: { contentType: string; body: string };
  /** Forward the client's Host header as it is: S3's SigV4 signs it, so a proxy that rewrote it would break every signature. */
  keepHost?: boolean;
}

export interface FaultProxy {
  url: string;
  /** What the proxy did so far, by kind. */
  counts: { passed: number; unavailable: number; reset: number; slow: number };
  /** Changes the rates (all 0: a plain proxy). */
  setRates(rates: Partial<FaultRates>): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string, rates: FaultRates): Promise<FaultProxy> {
  const upstream = new URL(target);
  let current = { ...rates };
  const counts = { passed: 0, unavailable: 0, reset: 0, slow: 0 };
  // Rolls spread evenly (the golden-ratio sequence), not at random: every kind of fault comes
  // within a few dozen requests at these rates, so each round of a test meets each of them.
  let requests = 0;
  const server = http.createServer((req, res) => {
    const roll = (++requests * 0.6180339887498949) % 1;
    if (roll < current.unavailable) {
      counts.unavailable++;
      const answer = current.unavailableBody ?? { contentType: 'application/json', body: JSON.stringify({ error: { code: 503, message: 'injected: service unavailable' } }) };
      res.writeHead(503, { 'Content-Type': answer.contentType, Connection: 'close' });
      res.end(answer.body);
      req.resume();
      return;
    }
    if (roll < current.unavailable + current.reset) {
      counts.reset++;
      req.socket.destroy();
      return;
    }
    const slow = roll < current.unavailable + current.reset + current.slow;
    if (slow) counts.slow++;
    else counts.passed++;
    const forwarded = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: current.keepHost ? req.headers : { ...req.headers, host: upstream.host } },
      (answer) => {
        const pass = () => {
          if (res.destroyed) return answer.resume();
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        };
        if (slow) setTimeout(pass, current.slowMs);
        else pass();
      },
    );
    forwarded.on('error', () => res.destroy());
    res.on('close', () => forwarded.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    setRates: (next) => (current = { ...current, ...next }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
