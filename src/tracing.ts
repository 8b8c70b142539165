/**
 * OpenTelemetry traces, configured by the standard OTEL_* variables and off unless an OTLP
 * endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
 * OTEL_TRACES_EXPORTER=none turns it off). HTTP (incoming requests and the GCS client's calls),
 * Koa and pg are instrumented; the Temporal interceptors (temporal/tracing-interceptors.ts) carry
 * the trace from a kick-off into its workflow and each activity. Started before anything loads
 * `http`, `koa` or `pg` (cli.ts imports this first), since instrumentations patch those modules
 * as they are required.
 */
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface Tracing {
  /** Where finished spans go; workflows' spans reach it through a worker sink. */
  spanProcessor: SpanProcessor;
  resource: Resource;
  shutdown(): Promise<void>;
}

let started: Tracing | undefined;

/** Whether the environment asks for traces. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_TRACES_EXPORTER ?? '').trim() === 'none' || (env.OTEL_SDK_DISABLED ?? '').trim() === 'true') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** Starts tracing for this process once, when requested; the service name is OTEL_SERVICE_NAME or `bulkflow-<command>`. */
export function startTracing(command: string, env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (started || !tracingRequested(env)) return started;
  // Loaded only when traces are asked for: the SDK, its exporter and instrumentations cost a
  // process about 10 MB of memory that it would otherwise carry for nothing.
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { KoaInstrumentation } = require('@opentelemetry/instrumentation-koa') as typeof import('@opentelemetry/instrumentation-koa');
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME?.trim() || `bulkflow-${command}` });
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter());
  const sdk = new NodeSDK({ resource, spanProcessors: [spanProcessor], instrumentations: [new HttpInstrumentation(), new KoaInstrumentation(), new PgInstrumentation()] });
  sdk.start();
  started = { spanProcessor, resource, shutdown: () => sdk.shutdown() };
  return started;
}

/** This process's tracing, or a processor that drops spans (interceptors and sinks are installed either way). */
export function currentTracing(): Pick<Tracing, 'spanProcessor' | 'resource'> {
  return started ?? { spanProcessor: new NoopSpanProcessor(), resource: Resource.default() };
}

/** Sends the spans still waiting (at shutdown). */
export async function stopTracing(): Promise<void> {
  await started?.shutdown();
}
