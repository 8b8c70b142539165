/**
 * OpenTelemetry traces, configured by the standard OTEL_* variables and off unless an OTLP
 * endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
 * OTEL_TRACES_EXPORTER=none turns it off). HTTP (incoming requests and the GCS client's calls),
 * Koa and pg are instrumented; the Temporal interceptors (temporal/tracing-interceptors.ts) carry
 * the trace from a kick-off into its workflow and each activity. Started before anything loads
 * `http`, `koa` or `pg` (cli.ts imports this first), since instrumentations patch those modules
 * as they are required.
 */
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { KoaInstrumentation } from '@opentelemetry/instrumentation-koa';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
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
