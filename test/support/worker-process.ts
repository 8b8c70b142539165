/** `bulkflow worker` as a child process on a stack's store and output directory (for tests that kill it). */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { testEnvironment } from '../harness/environment';
import type { ExportStack } from './export-stack';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');

/** `node`: the Node.js binary to run it on (default: the one running the tests, the pinned runtime). */
export function startWorkerProcess(stack: ExportStack, taskQueue = stack.taskQueue, node = process.execPath): ChildProcess {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` (npm test does)`);
  return spawn(node, [cli, 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: testEnvironment.temporalAddress,
      TEMPORAL_NAMESPACE: testEnvironment.temporalNamespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: testEnvironment.databaseUrl,
      OUTPUT_BACKEND: 'local',
      OUTPUT_DIR: stack.outputDir!,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}
