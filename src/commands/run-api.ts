import type { Server } from 'node:http';
import type { Config } from '../config';
import { createApp } from '../http/app';
import type { Logger } from '../log';

export interface RunningApi {
  url: string;
  /** Stops accepting connections and waits for in-flight requests. */
  close(): Promise<void>;
}

export async function runApi(config: Config, log: Logger): Promise<RunningApi> {
  const app = createApp({ config, log });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.on('error', reject);
  });
  const url = `${config.baseUrl}${config.fhirBasePath}`;
  log.info('API listening', { host: config.host, port: config.port, fhirBase: url });
  return {
    url,
    close: () =>
      new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
