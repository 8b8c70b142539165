/**
 * A provider's file server under trouble, in front of a bulkflow API: every request passes through
 * (with `X-Forwarded-Host`, so the manifests the API writes name the proxy), but every
 * `dropEvery`-th file download is cut after part of its body, as a dropped connection cuts it.
 * Counts what it did, so a test can show the drops happened and were resumed by range.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DroppingProxy {
  url: string;
  counts: { files: number; dropped: number; ranged: number };
  setDropEvery(n: number): void;
  close(): Promise<void>;
}

export async function startDroppingProxy(target: string, dropEvery: number): Promise<DroppingProxy> {
  const upstream = new URL(target);
  const counts = { files: 0, dropped: 0, ranged: 0 };
  let every = dropEvery;
  let url = '';
  const server = http.createServer((req, res) => {
    const isFile = (req.url ?? '').includes('/bulkfiles/');
    let drop = false;
    if (isFile) {
      counts.files++;
      if (req.headers.range) counts.ranged++;
      drop = every > 0 && counts.files % every === 0;
    }
    const forwarded = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host, 'x-forwarded-host': new URL(url).host, 'x-forwarded-proto': 'http' } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const length = Number(answer.headers['content-length'] ?? 0);
        if (!drop || length < 2) return void answer.pipe(res);
        // Pass on about 40% of the body, then cut the connection.
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (res.destroyed) return;
          const room = Math.floor(length * 0.4) - sent;
          if (room <= 0) return;
          const piece = chunk.subarray(0, room);
          sent += piece.length;
          res.write(piece, () => {
            if (sent >= Math.floor(length * 0.4) && !res.destroyed) {
              counts.dropped++;
              res.socket?.destroy();
              answer.destroy();
            }
          });
        });
      },
    );
    forwarded.on('error', () => res.destroy());
    res.on('close', () => forwarded.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    counts,
    setDropEvery: (n) => (every = n),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
