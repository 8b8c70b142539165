/**
 * Libraries a process may not need are loaded only when its settings ask for them: the GCS client
 * for GCS output, the OpenTelemetry SDK for traces (an idle worker was 220 MB RSS with both
 * loaded, 170-200 MB without). Run in a process of its own on the built code, since the question
 * is what that process loaded.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const dist = path.resolve(__dirname, '../../dist/src');

/** Starts tracing and an output store as `bulkflow worker` does, with `env`; which heavy libraries got loaded. */
async function loadedWith(env: Record<string, string>, backend: 'local' | 'gcs'): Promise<{ gcsClient: boolean; tracingSdk: boolean }> {
  const script = `
    require(${JSON.stringify(path.join(dist, 'tracing-preload.js'))});
    const { createOutputStore } = require(${JSON.stringify(path.join(dist, 'output/create-output-store.js'))});
    createOutputStore({ outputBackend: ${JSON.stringify(backend)}, outputDir: '/nonexistent', gcsBucket: 'b', gcsApiEndpoint: 'http://127.0.0.1:1', gcsRequestTimeoutMs: 1000 });
    const loaded = (name) => Object.keys(require.cache).some((file) => file.includes('/node_modules/' + name + '/'));
    console.log(JSON.stringify({ gcsClient: loaded('@google-cloud/storage'), tracingSdk: loaded('@opentelemetry/sdk-node') }));
    process.exit(0);`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_')));
  const { stdout } = await run(process.execPath, ['-e', script], { env: { ...clean, ...env }, timeout: 30_000 });
  return JSON.parse(stdout) as { gcsClient: boolean; tracingSdk: boolean };
}

describe('libraries loaded only when used', () => {
  it('local output without traces loads neither the GCS client nor the OpenTelemetry SDK', async () => {
    expect(await loadedWith({}, 'local')).toEqual({ gcsClient: false, tracingSdk: false });
  });

  it('GCS output loads the GCS client; an OTLP endpoint loads the OpenTelemetry SDK', async () => {
    expect(await loadedWith({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' }, 'gcs')).toEqual({ gcsClient: true, tracingSdk: true });
  });

  it('the API app and the worker load DuckDB only when a SQL query runs', async () => {
    const script = `
      require(${JSON.stringify(path.join(dist, 'http/app.js'))});
      require(${JSON.stringify(path.join(dist, 'temporal/worker.js'))});
      console.log(JSON.stringify(Object.keys(require.cache).some((file) => file.includes('/node_modules/@duckdb/'))));
      process.exit(0);`;
    const { stdout } = await run(process.execPath, ['-e', script], { timeout: 30_000 });
    expect(JSON.parse(stdout)).toBe(false);
  });
});
