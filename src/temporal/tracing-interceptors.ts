/**
 * The Temporal SDK's OpenTelemetry interceptors, always installed (with no tracer provider they
 * record nothing): the client's start a span per workflow start and pass its context in the
 * workflow's headers; the workflow's (bundled into the workflow code) continue it into each
 * activity's headers; the activity's run each attempt in a span under it. Workflow spans leave
 * the sandbox through the `exporter` sink.
 */
import { makeWorkflowExporter, OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor, OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { WorkerOptions } from '@temporalio/worker';
import { currentTracing } from '../tracing';

/** The workflow-side interceptor module (given to the bundler). */
export const workflowTracingModule = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

export const clientTracingInterceptors = () => ({ workflow: [new OpenTelemetryWorkflowClientInterceptor()] });

export function workerTracingOptions(): Required<Pick<WorkerOptions, 'interceptors'>> & { sinks: { exporter: ReturnType<typeof makeWorkflowExporter> } } {
  const { spanProcessor, resource } = currentTracing();
  return {
    interceptors: {
      workflowModules: [workflowTracingModule],
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })],
    },
    sinks: { exporter: makeWorkflowExporter(spanProcessor, resource) },
  };
}
