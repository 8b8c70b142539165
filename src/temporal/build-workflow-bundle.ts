/** Build step: bundles the workflow code once so workers start without webpack. */
import { writeFile } from 'node:fs/promises';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowTracingModule } from './tracing-interceptors';
import { workflowBundlePath } from './worker';
import { failureConverterPath } from './data-converter';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), workflowInterceptorModules: [workflowTracingModule], failureConverterPath, logger: quietLogger });
  await writeFile(workflowBundlePath, asciiOnly(code));
  console.log(`workflow bundle written to ${workflowBundlePath} (${(code.length / 1024).toFixed(0)} KiB)`);
}

/**
 * The code with every non-ASCII character as a \\u escape. A handful of them (dashes and arrows
 * in comments) made V8 hold the whole bundle as a two-byte string, twice its size, in the worker
 * and again in its workflow thread. Inside string, template and regular expression literals the
 * escape means the same character; in comments it changes nothing.
 */
const asciiOnly = (code: string): string => code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, log: noop, warn: console.warn, error: console.error };

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
