/**
 * Inputs as releases before the export window was passed whole wrote them (flat tenant, since,
 * until, compartment, transaction time), which running exports, pending activity tasks and
 * existing Temporal Schedules still carry. Each contract's reader upgrades them; delete a reader
 * only when nothing that old can still run (an export lives through its retention, a schedule
 * until it is updated).
 */
import { BLOCKS, type ExportInput, type ExportPartitionInput, type PatientBlocksInput, type PlanExportInput } from './bulk-export';
import type { CompartmentFilter, Cursor, ExportWindow, PartLimits, RequestedWindow } from './export-window';
import type { ScheduledExportInput } from './scheduled-export';

interface FlatWindow {
  tenant: string;
  since?: string;
  until?: string;
  compartment?: CompartmentFilter;
}

type Legacy<T> = T | (Omit<T, 'window'> & FlatWindow);

/** The flat window fields moved into `window`. */
function withWindow<T extends { window: RequestedWindow }>(input: Legacy<T>): T {
  if ('window' in input) return input;
  const { tenant, since, until, compartment, ...rest } = input;
  return { ...rest, window: { tenant, since, until, compartment } } as unknown as T;
}

/** A `bulkExport` input, as any release wrote it. */
export const readExportInput = (input: Legacy<ExportInput>): ExportInput => withWindow(input);

/** A `planExport` input, as any release wrote it. */
export const readPlanInput = (input: Legacy<PlanExportInput>): PlanExportInput => withWindow(input);

type ScheduledExport = ScheduledExportInput['export'];

/** A schedule's export (its Temporal Schedule's action keeps what the release that wrote it wrote); `since` is each run's. */
export function readScheduledExport(scheduled: ScheduledExport | Omit<Legacy<ScheduledExport>, 'tenant'>, tenant: string): ScheduledExport {
  return withWindow<ScheduledExport>({ tenant, ...scheduled } as Legacy<ScheduledExport>);
}

interface FlatPartitionInput extends FlatWindow, PartLimits {
  exportId: string;
  outputPrefix?: string;
  transactionTime: string;
  partition: number;
  elements?: ExportPartitionInput['elements'];
}

/** An `exportPartition` input, as any release wrote it (the partition's fields were spread in). */
export function readPartitionInput(input: ExportPartitionInput | (FlatPartitionInput & { type: string; deletions?: boolean; recorded?: boolean; after?: Cursor; upTo?: Cursor; filters?: string[] })): ExportPartitionInput {
  if ('window' in input) return input;
  return {
    location: { tenant: input.tenant, exportId: input.exportId, outputPrefix: input.outputPrefix },
    window: flatWindow(input),
    partition: { type: input.type, partition: input.partition, deletions: input.deletions, recorded: input.recorded, after: input.after, upTo: input.upTo },
    limits: { maxPartResources: input.maxPartResources, maxPartBytes: input.maxPartBytes },
    elements: input.elements,
    filters: input.filters,
  };
}

/** An `exportPatientBlocks` input, as any release wrote it. */
export function readBlocksInput(
  input: PatientBlocksInput | (FlatPartitionInput & { compartment: CompartmentFilter; types: string[]; afterPatient?: string; upToPatient?: string; typeFilters?: PatientBlocksInput['typeFilters'] }),
): PatientBlocksInput {
  if ('window' in input) return input;
  return {
    location: { tenant: input.tenant, exportId: input.exportId, outputPrefix: input.outputPrefix },
    window: { ...flatWindow(input), compartment: input.compartment },
    partition: { type: BLOCKS, partition: input.partition, blocks: { afterPatient: input.afterPatient, upToPatient: input.upToPatient } },
    limits: { maxPartResources: input.maxPartResources, maxPartBytes: input.maxPartBytes },
    types: input.types,
    elements: input.elements,
    typeFilters: input.typeFilters,
  };
}

const flatWindow = (input: FlatWindow & { transactionTime: string }): ExportWindow => ({
  tenant: input.tenant,
  transactionTime: input.transactionTime,
  since: input.since,
  until: input.until,
  compartment: input.compartment,
});
