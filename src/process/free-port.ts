import net from 'node:net';

/** Asks the kernel for a free TCP port on the loopback interface. */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether a TCP port is free on the loopback interface (binding it succeeds). */
function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/**
 * A free port in [min, max): for programs that keep ports in narrower fields than the kernel's
 * ephemeral range (the Temporal server stores membership ports as a signed 16-bit number).
 */
export async function findFreePortIn(min: number, max: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = min + Math.floor(Math.random() * (max - min));
    if (await isFree(port, host)) return port;
  }
  throw new Error(`no free port found in [${min}, ${max})`);
}
