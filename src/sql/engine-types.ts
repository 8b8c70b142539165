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
}

/** `$sql-run`'s limits when nothing is configured: generous, to protect the service, not to trim answers. */
export const DEFAULT_SQL_LIMITS: EngineLimits = { threads: 2, memoryLimit: '512MB', timeoutMs: 60_000, maxTableRows: 50_000_000, maxResultRows: 1_000_000 };

/** An export's SQL subject: results are files, so they may be long and big. */
export const DEFAULT_SQL_EXPORT_LIMITS: EngineLimits = { ...DEFAULT_SQL_LIMITS, timeoutMs: 3_600_000, maxResultRows: 500_000_000 };

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
  /** Rows of a materialised result. */
  rowCount?: number;
}

