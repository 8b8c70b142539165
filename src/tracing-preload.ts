/** Imported first by cli.ts: tracing starts before any instrumented module is loaded. */
import { startTracing } from './tracing';

startTracing(process.argv[2] ?? 'cli');
