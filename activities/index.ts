import type { Pool } from 'pg';
import type { OutputStore } from '../src/output/output-store';
import { patientLevelTypes, REFERENCED_TYPES } from '../src/fhir/patient-compartment';
import { compileTypeFilter, type TypeFilters } from '../src/fhir/search/type-filter';
import { ResourceStore } from '../src/store/resource-store';
import { recordReferencedSql, type CompartmentFilter } from '../src/store/snapshot-scope';
import { planPartitions, storedResourceTypes } from '../src/store/snapshot-reader';
import type { ExportPartitionInput, ExportPlan, OperationOutcomeIssueJson, PartFile, PlannedPartition } from '../workflows/types';
import { exportPartition } from './export-partition';

export interface ActivityDependencies {
  pool: Pool;
  output: OutputStore;
}

/** Activity implementations, built from injected dependencies so tests pass real ones. */
export function createActivities(deps: ActivityDependencies) {
  return {
    /**
     * Fixes the export's transactionTime (every write stamped at or before it has committed)
     * and cuts each requested type into partitions of about `partitionSize` resources.
     */
    async planExport(input: {
      exportId: string;
      tenant: string;
      types?: string[];
      compartment?: CompartmentFilter;
      since?: string;
      until?: string;
      typeFilters?: TypeFilters;
      partitionSize: number;
    }): Promise<ExportPlan> {
      const transactionTime = await new ResourceStore(deps.pool, input.tenant).snapshotTime();
      let types = input.types ?? (await storedResourceTypes(deps.pool, input.tenant));
      if (input.compartment && !input.types) {
        const exportable = new Set(patientLevelTypes());
        types = types.filter((t) => exportable.has(t));
      }
      // Patient/Group exports: record once which referenced resources (Practitioner, ...) they add.
      const referencedTypes = input.compartment ? types.filter((t) => REFERENCED_TYPES.includes(t)) : [];
      if (referencedTypes.length > 0) {
        await recordReferencedResources(deps.pool, input.exportId, input.tenant, input.compartment!, transactionTime, referencedTypes);
      }
      const totals: Record<string, number> = {};
      const deletedTotals: Record<string, number> = {};
      const partitions: PlannedPartition[] = [];
      // Deletions are reported only relative to a _since: without one the client holds nothing to delete.
      for (const deletions of input.since ? [false, true] : [false]) {
        for (const type of types) {
          const referenced = referencedTypes.includes(type);
          if (deletions && referenced) continue; // a deleted Practitioner no longer says whose it was
          // Deletions are checked against _typeFilter one by one (on the version they ended), never in SQL.
          const filterSql = deletions ? undefined : compileTypeFilter(type, input.typeFilters?.[type]).sql;
          const scope = { tenant: input.tenant, resourceType: type, transactionTime, since: input.since, until: input.until, compartment: input.compartment, referencedFor: referenced ? input.exportId : undefined, deletions, filterSql };
          const { count, bounds } = await planPartitions(deps.pool, scope, input.partitionSize);
          if (count === 0) continue;
          (deletions ? deletedTotals : totals)[type] = count;
          for (let i = 0; i <= bounds.length; i++) {
            partitions.push({ type, partition: i, after: bounds[i - 1], upTo: bounds[i], ...(deletions ? { deletions } : {}), ...(referenced ? { referenced } : {}) });
          }
        }
      }
      return { transactionTime, totals, deletedTotals, partitions };
    },

    async exportPartition(input: ExportPartitionInput) {
      return exportPartition(deps, input);
    },

    /** Writes the OperationOutcomes of lenient handling as the manifest's `error` file. */
    async writeErrorFile(input: { exportId: string; issues: OperationOutcomeIssueJson[] }): Promise<PartFile> {
      const key = `${input.exportId}/OperationOutcome-errors.ndjson`;
      const lines = input.issues.map((issue) => JSON.stringify({ resourceType: 'OperationOutcome', issue: [issue] }) + '\n');
      const writer = deps.output.createWriter(key);
      writer.stream.end(lines.join(''));
      await writer.done;
      return { type: 'OperationOutcome', key, count: lines.length, bytes: Buffer.byteLength(lines.join('')) };
    },

    /** Removes every file of an export (cancel, expiry). Idempotent. */
    async deleteExportFiles(input: { exportId: string }): Promise<number> {
      await deps.pool.query('DELETE FROM export_references WHERE export_id = $1', [input.exportId]);
      return deps.output.deletePrefix(`${input.exportId}/`);
    },
  };
}

/** Replaces the export's recorded referenced resources (a retried plan has a new transactionTime). */
async function recordReferencedResources(pool: Pool, exportId: string, tenant: string, compartment: CompartmentFilter, at: string, types: string[]) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('DELETE FROM export_references WHERE export_id = $1', [exportId]);
    await client.query(recordReferencedSql(exportId, tenant, compartment, at, types));
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export type Activities = ReturnType<typeof createActivities>;
