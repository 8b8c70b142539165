/**
 * The metrics listener of a process, on its own port (`METRICS_PORT`), apart from the public API:
 * `GET /metrics` (Prometheus text: the registries, then any extra text such as the Temporal
 * SDK's own), `GET /healthz` (the process is up) and `GET /readyz` (the process's own check).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServerOptions {
  host: string;
  port: number;
  registries: Registry[];
  /** More Prometheus text to append (fetched at scrape time). */
  extra?: () => Promise<string>;
  /** Why the process is not ready, or undefined when it is. */
  notReady?: () => Promise<string | undefined>;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const answer = async () => {
      if (req.method !== 'GET') return [405, 'text/plain', 'GET only\n'] as const;
      switch (req.url?.split('?')[0]) {
        case '/metrics': {
          const texts = await Promise.all(options.registries.map((r) => r.metrics()));
          if (options.extra) texts.push(await options.extra().catch((err: Error) => `# the Temporal SDK's metrics are unavailable: ${err.message}\n`));
          return [200, 'text/plain; version=0.0.4; charset=utf-8', texts.join('\n')] as const;
        }
        case '/healthz':
          return [200, 'text/plain', 'ok\n'] as const;
        case '/readyz': {
          const reason = await (options.notReady?.() ?? Promise.resolve(undefined)).catch((err: Error) => err.message);
          return reason ? ([503, 'text/plain', `not ready: ${reason}\n`] as const) : ([200, 'text/plain', 'ready\n'] as const);
        }
        default:
          return [404, 'text/plain', 'not found\n'] as const;
      }
    };
    answer().then(
      ([status, type, body]) => res.writeHead(status, { 'Content-Type': type }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host === '0.0.0.0' ? '127.0.0.1' : options.host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
