import { stopAll } from './global-setup';
import { getRunningHarness } from './running';

export default async function globalTeardown(): Promise<void> {
  const harness = getRunningHarness();
  if (harness) await stopAll(harness);
}
