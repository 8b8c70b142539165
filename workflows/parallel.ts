import { CancellationScope } from '@temporalio/workflow';

/**
 * `work` over `items`, at most `lanes` at a time, in order of `items`. With `cancelSiblings`, the
 * first failure cancels the work still running (a strict export does not go on exporting what it
 * will not deliver), waits for it to stop, and is rethrown. Without it (histories of exports
 * started before that patch), the first failure is rethrown at once, as they were.
 */
export async function inParallel<T>(items: readonly T[], lanes: number, work: (item: T) => Promise<void>, cancelSiblings: boolean): Promise<void> {
  let next = 0;
  let failure: unknown;
  const scope = new CancellationScope();
  const lane = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++];
      if (!cancelSiblings) {
        await work(item);
        continue;
      }
      try {
        await work(item);
      } catch (err) {
        // The first error wins: a failure, or the export's own cancellation reaching this lane.
        // Cancellations that follow are the ones this scope sent the siblings.
        if (failure === undefined) {
          failure = err;
          scope.cancel();
        }
        return;
      }
    }
  };
  const all = () => Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
  if (!cancelSiblings) {
    await all();
    return;
  }
  await scope.run(all);
  if (failure !== undefined) throw failure;
}
