import type { Logger } from '../log';

/**
 * Waits for SIGINT/SIGTERM (or for `crashed` to settle, e.g. the worker dying), then runs
 * `stop` once. A second signal while stopping exits at once.
 */
export async function onShutdownSignal(log: Logger, crashed: Promise<unknown>, stop: () => Promise<void>): Promise<void> {
  let signalled = false;
  const reason = await new Promise<string>((resolve, reject) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        log.warn('second signal: exiting without draining', { signal });
        process.exit(1);
      }
      signalled = true;
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    crashed.then(
      () => reject(new Error('the worker stopped unexpectedly')),
      (err: unknown) => reject(err),
    );
  });
  log.info('shutting down', { reason });
  await stop();
  log.info('stopped');
}
