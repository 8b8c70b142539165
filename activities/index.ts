import type { Pool } from 'pg';

export interface ActivityDependencies {
  pool: Pool;
}

/** Activity implementations, built from injected dependencies so tests pass real ones. */
export function createActivities(deps: ActivityDependencies) {
  return {
    /**
     * The database's clock, used to fix an export's transactionTime: rows are stamped by the
     * database, so comparing against the worker's clock could miss or include a row.
     */
    async readDatabaseTime(): Promise<string> {
      const { rows } = await deps.pool.query<{ now: Date }>('SELECT now() AS now');
      return rows[0].now.toISOString();
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
