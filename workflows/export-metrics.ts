/**
 * How an export ended, told to the worker's metrics through a sink: sinks run in the worker
 * process outside the workflow sandbox, issue no commands and are not called again on replay,
 * so counting here changes nothing that running exports replay.
 */
import { proxySinks, type Sinks } from '@temporalio/workflow';

export type ExportOutcome = 'completed' | 'failed' | 'cancelled';

export interface ExportMetricsSinks extends Sinks {
  exportMetrics: {
    finished(kind: 'bulk' | 'view', level: string, tenant: string, outcome: ExportOutcome): void;
    /** A lake schedule's run ended: its rows and bytes (0 unless completed). */
    lakeRun(tenant: string, scheduleId: string, outcome: ExportOutcome, rows: number, bytes: number): void;
  };
}

export const { exportMetrics } = proxySinks<ExportMetricsSinks>();
