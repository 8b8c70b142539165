/**
 * The durable side of scheduled exports: each schedule's watermark (the transactionTime of its
 * last completed run, which is the next run's `_since`), its runs, and the latest manifest.
 * The watermark moves only by compare-and-set from the value a run started from, so a failed,
 * cancelled, skipped or concurrent run can never open a gap or an overlap in the chain.
 */
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { withTransaction } from './transaction';

export type RunState = 'running' | 'completed' | 'superseded' | 'failed' | 'cancelled';

export interface ScheduledRun {
  exportId: string;
  workflowId: string;
  /** The run's `_since`; absent for a first run that exports everything. */
  since?: string;
  transactionTime?: string;
  state: RunState;
  reason?: string;
  startedAt: string;
  finishedAt?: string;
  manifest?: unknown;
}

export interface RunStart {
  exportId: string;
  /** The watermark the run started from (compared when it completes). */
  watermark?: string;
  since?: string;
}

export interface ScheduleRecord {
  watermark?: string;
  watermarkExportId?: string;
  latestManifest?: unknown;
}

const iso = (value: Date | null | undefined) => (value ? value.toISOString() : undefined);

export class ScheduleLedger {
  constructor(private readonly pool: Pool) {}

  /**
   * Starts (or, for a retried activity, finds) the scheduled run `runId`: its export id, and its
   * `_since` = the watermark, or `start` when the schedule has never completed a run.
   */
  async beginRun(run: { tenant: string; scheduleId: string; workflowId: string; runId: string; start?: string }): Promise<RunStart> {
    return withTransaction(this.pool, async (client) => {
      await client.query('INSERT INTO export_schedules (tenant, schedule_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [run.tenant, run.scheduleId]);
      const { rows: existing } = await client.query<{ export_id: string; since: Date | null; watermark: Date | null }>(
        'SELECT export_id, since, watermark FROM schedule_runs WHERE tenant = $1 AND run_id = $2',
        [run.tenant, run.runId],
      );
      if (existing.length > 0) {
        return { exportId: existing[0].export_id, since: iso(existing[0].since), watermark: iso(existing[0].watermark) };
      }
      const { rows } = await client.query<{ watermark: Date | null }>('SELECT watermark FROM export_schedules WHERE tenant = $1 AND schedule_id = $2 FOR UPDATE', [
        run.tenant,
        run.scheduleId,
      ]);
      const watermark = iso(rows[0].watermark);
      const since = watermark ?? (run.start ? new Date(run.start).toISOString() : undefined);
      const exportId = randomBytes(16).toString('base64url'); // unguessable, like every job id
      await client.query(
        `INSERT INTO schedule_runs (tenant, schedule_id, run_id, workflow_id, export_id, watermark, since, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running')`,
        [run.tenant, run.scheduleId, run.runId, run.workflowId, exportId, watermark ?? null, since ?? null],
      );
      return { exportId, watermark, since };
    });
  }

  /**
   * Records a completed run. The watermark advances to its transactionTime only if it still
   * holds the value the run started from; otherwise another run got there first and this one is
   * `superseded` (its files stay readable, but the chain does not go through it).
   */
  async completeRun(run: {
    tenant: string;
    scheduleId: string;
    exportId: string;
    watermark?: string;
    transactionTime: string;
    manifest: unknown;
  }): Promise<'completed' | 'superseded'> {
    return withTransaction(this.pool, async (client) => {
      const { rows: current } = await client.query<{ state: RunState }>('SELECT state FROM schedule_runs WHERE tenant = $1 AND export_id = $2', [run.tenant, run.exportId]);
      if (current[0] && current[0].state !== 'running') {
        // A retried activity: already recorded.
        return current[0].state === 'completed' ? 'completed' : 'superseded';
      }
      const manifest = JSON.stringify(run.manifest);
      const advanced = await client.query(
        `UPDATE export_schedules SET watermark = $3, watermark_export_id = $4, latest_manifest = $5, updated_at = now()
          WHERE tenant = $1 AND schedule_id = $2 AND watermark IS NOT DISTINCT FROM $6`,
        [run.tenant, run.scheduleId, run.transactionTime, run.exportId, manifest, run.watermark ?? null],
      );
      const state = advanced.rowCount === 1 ? 'completed' : 'superseded';
      await client.query(
        `UPDATE schedule_runs SET state = $3, transaction_time = $4, manifest = $5, finished_at = now() WHERE tenant = $1 AND export_id = $2`,
        [run.tenant, run.exportId, state, run.transactionTime, manifest],
      );
      return state;
    });
  }

  /** Records a run that ended without output (failed or cancelled); the watermark stays. */
  async endRun(run: { tenant: string; exportId: string; state: 'failed' | 'cancelled'; reason: string }): Promise<void> {
    await this.pool.query(`UPDATE schedule_runs SET state = $3, reason = $4, finished_at = now() WHERE tenant = $1 AND export_id = $2 AND state = 'running'`, [
      run.tenant,
      run.exportId,
      run.state,
      run.reason,
    ]);
  }

  async schedule(tenant: string, scheduleId: string): Promise<ScheduleRecord> {
    const { rows } = await this.pool.query<{ watermark: Date | null; watermark_export_id: string | null; latest_manifest: unknown }>(
      'SELECT watermark, watermark_export_id, latest_manifest FROM export_schedules WHERE tenant = $1 AND schedule_id = $2',
      [tenant, scheduleId],
    );
    const row = rows[0];
    if (!row) return {};
    return { watermark: iso(row.watermark), watermarkExportId: row.watermark_export_id ?? undefined, latestManifest: row.latest_manifest ?? undefined };
  }

  /** How many runs of the schedule completed (a lake schedule's `fullEvery` counts them). */
  async completedRuns(tenant: string, scheduleId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM schedule_runs WHERE tenant = $1 AND schedule_id = $2 AND state = 'completed'`, [tenant, scheduleId]);
    return Number(rows[0].n);
  }

  /** The newest runs first. */
  async runs(tenant: string, scheduleId: string, limit: number): Promise<ScheduledRun[]> {
    const { rows } = await this.pool.query<{
      export_id: string;
      workflow_id: string;
      since: Date | null;
      transaction_time: Date | null;
      state: RunState;
      reason: string | null;
      started_at: Date;
      finished_at: Date | null;
      manifest: unknown;
    }>(
      `SELECT export_id, workflow_id, since, transaction_time, state, reason, started_at, finished_at, manifest
         FROM schedule_runs WHERE tenant = $1 AND schedule_id = $2 ORDER BY started_at DESC, export_id LIMIT $3`,
      [tenant, scheduleId, limit],
    );
    return rows.map((r) => ({
      exportId: r.export_id,
      workflowId: r.workflow_id,
      since: iso(r.since),
      transactionTime: iso(r.transaction_time),
      state: r.state,
      reason: r.reason ?? undefined,
      startedAt: r.started_at.toISOString(),
      finishedAt: iso(r.finished_at),
      manifest: r.manifest ?? undefined,
    }));
  }
}
