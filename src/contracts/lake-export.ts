/**
 * The `scheduledViewExport` workflow's contract: a schedule whose runs keep one table per
 * `$sql-export` subject in the output store (the lake), and the run manifest each run writes.
 * Imports only the other contracts.
 */
import type { ExportTuning } from './bulk-export';
import type { CompartmentFilter } from './export-window';
import type { ScheduleDefinition } from './scheduled-export';
import type { ExportedSqlSubject, ExportedView, ViewFormat } from './view-export';

/** A run's name (its folder `run=<name>`): its snapshot, compact and sortable (`20261205T061530.123Z`). */
export const lakeRunName = (snapshot: string) => new Date(snapshot).toISOString().replace(/[-:]/g, '');

/** The column every incremental table's rows carry: the id of the resource they came from. */
export const LAKE_KEY_COLUMN = 'lake_resource_key';

export type LakeMode = 'incremental' | 'full';

/** A subject that names a stored resource: re-read at each run, and a run fails when it changed. */
export interface StoredSubjectRef {
  type: 'ViewDefinition' | 'Library';
  id?: string;
  url?: string;
  version?: string;
  /** The stored resource's content when the schedule was made (its `meta` left out). */
  digest: string;
}

/** One table of the lake: a view (incremental or full) or a SQL subject (always full). */
export interface LakeSubject {
  name: string;
  view?: ExportedView;
  sql?: ExportedSqlSubject;
  mode: LakeMode;
  /** The column holding each row's resource key (a view's own `getResourceKey()` column, or LAKE_KEY_COLUMN). */
  keyColumn?: string;
  /** The content the table was made from: a change makes the next run of that table full. */
  digest: string;
  stored?: StoredSubjectRef;
}

/** What every run of a lake schedule starts from (the Temporal Schedule's action argument). */
export interface ScheduledViewExportInput {
  scheduleId: string;
  tenant: string;
  owner: string;
  /** The schedule's admin URL (the child exports' request). */
  request: string;
  subjects: LakeSubject[];
  format: ViewFormat;
  header: boolean;
  compartment?: CompartmentFilter;
  /** `<tenant>/<destination>/` holds the tables and `_runs/`. */
  destination: string;
  /** Every Nth completed run rewrites the incremental tables in full (absent: only the first run). */
  fullEvery?: number;
  /** How long run folders a full run superseded are kept (absent: removed once it is complete). */
  retentionMs?: number;
  tuning: ExportTuning;
  webhookUrl?: string;
  definition: ScheduleDefinition;
}

/** One file of a run, as the run manifest lists it (key relative to the destination). */
export interface LakeFile {
  key: string;
  rows: number;
  bytes: number;
}

export interface LakeSubjectRun {
  mode: LakeMode;
  /** Why a table went full this run: `first`, `fullEvery`, `changed`, `mode`. */
  fullBecause?: string;
  snapshot: string;
  rows: number;
  bytes: number;
  files: LakeFile[];
  /** Incremental runs: the keys whose earlier rows a reader drops before adding this run's. */
  deleted?: LakeFile;
  keyColumn?: string;
  digest: string;
}

/** `<destination>/_runs/<run>.json`, written last: a run is complete when it is there. */
export interface LakeRunManifest {
  scheduleId: string;
  /** The run folder's name after `run=`. */
  run: string;
  snapshot: string;
  previousSnapshot?: string;
  status: 'completed';
  format: ViewFormat;
  subjects: Record<string, LakeSubjectRun>;
}

/** `<destination>/<subject>/_latest`: the newest complete run, and the newest full run a reader starts from. */
export interface LakeLatestPointer {
  run: string;
  fullRun: string;
}

/**
 * Why `subject` is rewritten in full this run, or undefined for an incremental run: its mode, the
 * table's first run, a changed definition (the previous run made it from other content), or
 * every `fullEvery`th completed run.
 */
export function fullBecause(subject: LakeSubject, previous: LakeRunManifest | undefined, completedRuns: number, fullEvery: number | undefined): string | undefined {
  if (subject.mode === 'full') return subject.sql ? 'sql' : 'mode';
  const before = previous?.subjects[subject.name];
  if (!before) return 'first';
  if (before.digest !== subject.digest) return 'changed';
  if (fullEvery && completedRuns % fullEvery === 0) return 'fullEvery';
  return undefined;
}
