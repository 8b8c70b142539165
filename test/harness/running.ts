/** What global-setup started, kept on globalThis for global-teardown (same process). */
export interface RunningHarness {
  stops: Array<() => Promise<void>>;
}

const key = Symbol.for('bulkflow.test.harness');

export function setRunningHarness(harness: RunningHarness): void {
  (globalThis as Record<symbol, unknown>)[key] = harness;
}

export function getRunningHarness(): RunningHarness | undefined {
  return (globalThis as Record<symbol, unknown>)[key] as RunningHarness | undefined;
}
