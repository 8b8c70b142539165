import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type Koa from 'koa';

/** Serves a Koa app on a loopback port (a free one by default) for one test file. */
export async function listen(app: Koa<any>, requestedPort = 0): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(requestedPort, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
