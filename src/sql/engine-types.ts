/**
 * What the embedded SQL engine takes and gives, apart from the engine itself: the API and the
 * worker load the DuckDB addon (tens of MB) only when the first SQL query runs (duckdb-engine.ts),
 * not when they start.
 */
import type { ResultColumn } from './result-columns';

/** Column types of a materialised table (FHIR dates stay text: they may be partial). */
export type TableColumnType = 'VARCHAR' | 'BIGINT' | 'DOUBLE' | 'BOOLEAN';

export interface SqlTable {
  /** The `label` the query knows the table by. */
  name: string;
  columns: ReadonlyArray<{ name: string; type: TableColumnType }>;
  /** Rows in batches; a value is a string, number, boolean or null as the column's type says. */
  rows: AsyncIterable<ReadonlyArray<ReadonlyArray<unknown>>> | Iterable<ReadonlyArray<ReadonlyArray<unknown>>>;
}

/** The SQLQuery parameter types (Library.parameter.type) and how each is bound. */
export type SqlParameterType = 'string' | 'integer' | 'decimal' | 'boolean' | 'date' | 'dateTime';

export interface SqlParameter {
  name: string;
  type: SqlParameterType;
  value: string | number | boolean;
}

export interface EngineLimits {
  threads: number;
  /** DuckDB's memory_limit, e.g. `512MB`. */
  memoryLimit: string;
  timeoutMs: number;
  /** Rows one materialised table may hold (SQL_MAX_TABLE_ROWS). */
  maxTableRows: number;
  /** Rows the result may have (SQL_RUN_MAX_ROWS, SQL_EXPORT_MAX_ROWS). */
  maxResultRows: number;
  /** Bytes of values the result may have before it is encoded (SQL_RUN_MAX_RESULT_MB; an export's files stream: no cap). */
  maxResultBytes: number;
  /**
   * Where the engine spills what does not fit its memory: a directory per query made under this
   * one and removed after it (DATA_DIR/sql-spill); without it the engine does not spill.
   */
  spillDirectory?: string;
  /** The most one query may spill, in MB (SQL_SPILL_LIMIT_MB). */
  spillLimitMb: number;
}

/** `$sql-run`'s limits when nothing is configured: generous, to protect the service, not to trim answers. */
export const DEFAULT_SQL_LIMITS: EngineLimits = { threads: 2, memoryLimit: '512MB', timeoutMs: 60_000, maxTableRows: 50_000_000, maxResultRows: 1_000_000, maxResultBytes: 32 * 1024 * 1024, spillLimitMb: 512 };

/** An export's SQL subject: results are files, so they may be long and big. */
export const DEFAULT_SQL_EXPORT_LIMITS: EngineLimits = { ...DEFAULT_SQL_LIMITS, timeoutMs: 3_600_000, maxResultRows: 500_000_000, maxResultBytes: Infinity };

/** How many `$sql-run` queries one API process runs at once, in all and for one tenant; more wait for a 429's Retry-After. */
export interface SqlAdmissionLimits {
  perProcess: number;
  perTenant: number;
}

export const DEFAULT_SQL_ADMISSION: SqlAdmissionLimits = { perProcess: 4, perTenant: 2 };

export type SqlRefusalCode = 'invalid' | 'processing' | 'too-costly' | 'timeout';

/** The query cannot run as given; `code` is the OperationOutcome issue code it answers with. */
export class SqlRefused extends Error {
  constructor(
    readonly code: SqlRefusalCode,
    message: string,
  ) {
    super(message);
    this.name = 'SqlRefused';
  }
}

export interface SqlResult {
  columns: ResultColumn[];
  /** Result rows in chunks, as plain values (result-columns.ts). */
  chunks: AsyncIterable<unknown[][]>;
  /** Time to make the tables, and the rows of each. */
  stats: { materialiseMs: number; tableRows: Record<string, number> };
  /** Closes the database and removes its spill files: done by reading `chunks` to its end or a failure; needed where they are not read. */
  close(): Promise<void>;
}

