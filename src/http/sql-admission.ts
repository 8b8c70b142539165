/**
 * How many `$sql-run` queries this API process runs at once, in all and for each tenant
 * (SQL_MAX_CONCURRENT, SQL_MAX_CONCURRENT_PER_TENANT). Each holds an engine with its threads
 * and memory; one more is a 429 with Retry-After, not a queue that grows with the load.
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { SqlAdmissionLimits } from '../sql/engine-types';

/** What a refused client waits: a query either ends within its time limit or is stopped at it. */
const RETRY_AFTER_SECONDS = 2;

export class SqlAdmission {
  private running = 0;
  private readonly perTenant = new Map<string, number>();

  constructor(private readonly limits: SqlAdmissionLimits) {}

  /** A slot for one query of `tenant`, released by the function returned; 429 when none is free. */
  enter(tenant: string): () => void {
    const mine = this.perTenant.get(tenant) ?? 0;
    if (this.running >= this.limits.perProcess) throw OperationOutcomeError.throttled(`${this.running} SQL queries are running, the most this server runs at once (SQL_MAX_CONCURRENT); try again later`, RETRY_AFTER_SECONDS);
    if (mine >= this.limits.perTenant) throw OperationOutcomeError.throttled(`${mine} SQL queries of this tenant are running, the most one tenant runs at once (SQL_MAX_CONCURRENT_PER_TENANT); try again later`, RETRY_AFTER_SECONDS);
    this.running++;
    this.perTenant.set(tenant, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      const left = (this.perTenant.get(tenant) ?? 1) - 1;
      if (left === 0) this.perTenant.delete(tenant);
      else this.perTenant.set(tenant, left);
    };
  }
}
