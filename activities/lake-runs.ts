/**
 * The activities of a lake run (scheduledViewExport): what the last runs left (how many, and the
 * newest manifest), a check that stored subjects did not change, an incremental table's
 * deletions file, and the commit: the watermark moved by compare-and-set, then the staged files
 * moved into their tables, `_latest` per table, the run manifest last. Every step can run again.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import type { PartFile } from '../src/contracts/bulk-export';
import type { LakeLatestPointer, LakeMode, LakeRunManifest, LakeSubject, LakeSubjectRun } from '../src/contracts/lake-export';
import type { ViewFormat } from '../src/contracts/view-export';
import {
  lakeDeletedKey,
  lakeLatestKey,
  lakeManifestKey,
  lakePartKey,
  lakeRelativeKey,
  lakeRunFolder,
  lakeStagedDeletedKey,
  lakeStagingFolder,
  VIEW_FILE_EXTENSIONS,
} from '../src/output/file-keys';
import { readText, writeText, type OutputStore } from '../src/output/output-store';
import { digestOf } from '../src/schedules/lake-subjects';
import { ResourceStore } from '../src/store/resource-store';
import { ScheduleLedger } from '../src/store/schedule-ledger';
import { findByCanonical } from '../src/store/stored-canonical';
import { SNAPSHOT_INDEX_PREDICATE } from '../src/store/snapshot-scope';
import { rowParts } from './row-parts';

/** One table's share of a run, as the workflow hands it to the commit. */
export interface LakeSubjectOutcome {
  name: string;
  mode: LakeMode;
  fullBecause?: string;
  snapshot: string;
  parts: PartFile[];
  deleted?: PartFile;
  keyColumn?: string;
  digest: string;
}

export interface CompleteLakeRunInput {
  tenant: string;
  scheduleId: string;
  exportId: string;
  /** The watermark the run started from (compared when it completes). */
  watermark?: string;
  destination: string;
  run: string;
  snapshot: string;
  format: ViewFormat;
  subjects: LakeSubjectOutcome[];
  /** The run's staging folders (its exports' and its deletions'). */
  staged: string[];
}

export function lakeRunActivities(deps: { pool: Pool; output: OutputStore }) {
  const ledger = new ScheduleLedger(deps.pool);
  const dropStaged = async (run: { tenant: string; destination: string; staged: string[] }) => {
    for (const folder of run.staged) await deps.output.deletePrefix(lakeStagingFolder(run.tenant, run.destination, folder));
  };
  return {
    /** How many runs of the schedule completed, and the newest one's manifest (a lake run's, if it was one). */
    async lakeHistory(input: { tenant: string; scheduleId: string }): Promise<{ completedRuns: number; previous?: LakeRunManifest }> {
      const record = await ledger.schedule(input.tenant, input.scheduleId);
      const previous = record.latestManifest as LakeRunManifest | undefined;
      return { completedRuns: await ledger.completedRuns(input.tenant, input.scheduleId), ...(previous?.subjects ? { previous } : {}) };
    },

    /** Fails the run (for good) when a stored subject was deleted or changed since the schedule was made. */
    async checkLakeSubjects(input: { tenant: string; subjects: LakeSubject[] }): Promise<void> {
      const store = new ResourceStore(deps.pool, input.tenant);
      for (const { name, stored } of input.subjects) {
        if (!stored) continue;
        const what = stored.id ? `${stored.type}/${stored.id}` : `${stored.type} ${stored.url}${stored.version ? `|${stored.version}` : ''}`;
        const now = stored.id ? await store.read(stored.type, stored.id) : undefined;
        const resource = stored.id ? (now && !now.deleted && now.body ? (JSON.parse(now.body) as Record<string, unknown>) : undefined) : await findByCanonical(store, stored.type, stored.url!, stored.version);
        if (!resource) throw ApplicationFailure.nonRetryable(`Subject ${name}: ${what} was deleted since the schedule was made; PUT the schedule with the subjects it should export`, 'LakeSubjectChanged');
        if (digestOf(resource) !== stored.digest) {
          throw ApplicationFailure.nonRetryable(`Subject ${name}: ${what} changed since the schedule was made; PUT the schedule to take the new version (its table's next run is then full)`, 'LakeSubjectChanged');
        }
      }
    },

    /**
     * The keys of `type`'s resources that changed in (since, snapshot] and had a version before it
     * (updated or deleted): a reader drops their earlier rows. Written staged, one file; none when
     * there are none.
     */
    async writeLakeDeletions(input: { tenant: string; destination: string; stagingFolder: string; subject: string; type: string; keyColumn: string; since: string; snapshot: string; format: ViewFormat }): Promise<PartFile | undefined> {
      // A range of the snapshot index (the window's changes), deduplicated and ordered here: with
      // DISTINCT and ORDER BY id a store never analyzed is read along its primary key, the whole type.
      const { rows: changed } = await deps.pool.query<{ id: string }>(
        `SELECT id FROM resource_versions
          WHERE tenant = $1 AND resource_type = $2 AND ${SNAPSHOT_INDEX_PREDICATE}
            AND resource_versions.last_updated > $3::timestamptz AND resource_versions.last_updated <= $4::timestamptz
            AND (version_id > 1 OR deleted)`,
        [input.tenant, input.type, input.since, input.snapshot],
      );
      const rows = [...new Set(changed.map((r) => r.id))].sort().map((id) => ({ id }));
      if (rows.length === 0) return undefined;
      const parts: PartFile[] = [];
      const writer = rowParts({
        output: deps.output,
        keyOf: () => lakeStagedDeletedKey(input.tenant, input.destination, input.stagingFolder, input.subject, VIEW_FILE_EXTENSIONS[input.format]),
        fileType: `${input.subject}-deleted`,
        limits: { maxPartResources: Number.MAX_SAFE_INTEGER, maxPartBytes: Number.MAX_SAFE_INTEGER },
        parts,
        columns: [{ name: input.keyColumn, path: 'getResourceKey()', type: 'string', collection: false, tags: [] }],
        format: input.format,
        header: true,
      });
      for (const row of rows) {
        const writing = writer.add([[row.id]]);
        if (writing) await writing;
      }
      await writer.flush();
      await writer.finish();
      return parts[0];
    },

    /**
     * The run's commit. The watermark moves first (compare-and-set from the run's start): a run
     * another got ahead of is `superseded` and its staged files are dropped. Then each staged
     * file moves to its table's `run=<run>/part-NNNNN`, each table's `_latest` names the run, and
     * the run manifest is written last: a reader who takes only runs listed in `_runs/` never
     * takes a half run.
     */
    async completeLakeRun(input: CompleteLakeRunInput): Promise<{ state: 'completed' | 'superseded'; manifest: LakeRunManifest }> {
      const { tenant, destination, run } = input;
      const ext = VIEW_FILE_EXTENSIONS[input.format];
      const moves: Array<[string, string]> = [];
      const subjects: Record<string, LakeSubjectRun> = {};
      for (const s of input.subjects) {
        const files = s.parts.map((part, n) => {
          const key = lakePartKey(tenant, destination, s.name, run, n, ext);
          moves.push([part.key, key]);
          return { key: lakeRelativeKey(tenant, destination, key), rows: part.count, bytes: part.bytes };
        });
        let deleted: LakeSubjectRun['deleted'];
        if (s.deleted) {
          const key = lakeDeletedKey(tenant, destination, s.name, run, ext);
          moves.push([s.deleted.key, key]);
          deleted = { key: lakeRelativeKey(tenant, destination, key), rows: s.deleted.count, bytes: s.deleted.bytes };
        }
        subjects[s.name] = {
          mode: s.mode,
          ...(s.fullBecause ? { fullBecause: s.fullBecause } : {}),
          snapshot: s.snapshot,
          rows: files.reduce((n, f) => n + f.rows, 0),
          bytes: files.reduce((n, f) => n + f.bytes, 0),
          files,
          ...(deleted ? { deleted } : {}),
          ...(s.keyColumn ? { keyColumn: s.keyColumn } : {}),
          digest: s.digest,
        };
      }
      const manifest: LakeRunManifest = { scheduleId: input.scheduleId, run, snapshot: input.snapshot, ...(input.watermark ? { previousSnapshot: input.watermark } : {}), status: 'completed', format: input.format, subjects };
      const state = await ledger.completeRun({ tenant, scheduleId: input.scheduleId, exportId: input.exportId, watermark: input.watermark, transactionTime: input.snapshot, manifest });
      if (state === 'completed') {
        for (const [from, to] of moves) await deps.output.move(from, to);
        for (const s of input.subjects) {
          const key = lakeLatestKey(tenant, destination, s.name);
          const before = JSON.parse((await readText(deps.output, key)) ?? '{}') as Partial<LakeLatestPointer>;
          const pointer: LakeLatestPointer = { run, fullRun: s.mode === 'full' || s.fullBecause ? run : (before.fullRun ?? run) };
          await writeText(deps.output, key, JSON.stringify(pointer));
        }
        await writeText(deps.output, lakeManifestKey(tenant, destination, run), JSON.stringify(manifest, null, 2));
      }
      await dropStaged(input);
      return { state, manifest };
    },

    /** Drops a failed or cancelled run's staged files. */
    async dropLakeStaging(input: { tenant: string; destination: string; staged: string[] }): Promise<void> {
      await dropStaged(input);
    },

    /**
     * Removes the run folders of `subjects` from before their newest full run, once older than
     * `retentionMs` (none: at once). Called only after that full run is complete.
     */
    async pruneLakeRuns(input: { tenant: string; destination: string; subjects: string[]; retentionMs?: number; now: string }): Promise<number> {
      let removed = 0;
      for (const subject of input.subjects) {
        const pointer = JSON.parse((await readText(deps.output, lakeLatestKey(input.tenant, input.destination, subject))) ?? '{}') as Partial<LakeLatestPointer>;
        if (!pointer.fullRun) continue;
        const cutoff = new Date(new Date(input.now).getTime() - (input.retentionMs ?? 0));
        const folders = new Set((await deps.output.list(`${input.tenant}/${input.destination}/${subject}/`)).map((key) => /\/run=([^/]+)/.exec(key)?.[1]).filter((r): r is string => !!r));
        for (const folder of folders) {
          if (folder >= pointer.fullRun || runTime(folder) > cutoff) continue;
          removed += await deps.output.deletePrefix(lakeRunFolder(input.tenant, input.destination, subject, folder));
        }
      }
      return removed;
    },
  };
}

/** A run name (`20261205T061530.123Z`) back to its instant. */
function runTime(run: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\.\d+)?Z$/.exec(run);
  return m ? new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}Z`) : new Date(8.64e15);
}
