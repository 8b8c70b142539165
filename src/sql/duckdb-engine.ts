/**
 * SQL over views (SQLQuery Libraries) in DuckDB, embedded: one fresh in-memory database per
 * execution, holding nothing but the tables the query depends on. Locked down before any user
 * SQL is seen: external access off (no file, COPY, ATTACH, INSTALL/LOAD, read_csv), extension
 * autoload and autoinstall off, threads and memory capped, the configuration locked so the
 * query cannot undo any of it. The user's SQL must parse, by DuckDB's own parser, as exactly one
 * SELECT; parameters are bound with their declared types; a wall-clock timeout interrupts it
 * inside the engine, and running out of memory is this query's error, not the process's.
 */
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  DuckDBInstance,
  DuckDBTypeId,
  StatementType,
  VARCHAR,
  arrayFromArrayValue,
  arrayFromListValue,
  booleanFromValue,
  bytesFromBlobValue,
  dateFromTimestampMillisecondsValue,
  dateFromTimestampNanosecondsValue,
  dateFromTimestampSecondsValue,
  dateFromTimestampTZValue,
  dateFromTimestampValue,
  doubleFromDecimalValue,
  jsonObjectFromIntervalValue,
  numberFromValue,
  objectArrayFromMapValue,
  objectFromStructValue,
  objectFromUnionValue,
  stringFromValue,
  type DuckDBAppender,
  type DuckDBConnection,
  type DuckDBResult,
  type DuckDBType,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { leadingKeyword, rewritePlaceholders } from './placeholders';
import { engineCatalogNames, refuseOutsideReads } from './read-guard';
import type { ResultKind } from './result-columns';
import { SqlRefused, type EngineLimits, type SqlParameter, type SqlParameterType, type SqlResult, type SqlTable, type TableColumnType } from './engine-types';

export * from './engine-types';

const LABEL = /^[A-Za-z][A-Za-z0-9_]*$/;
const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;
const DUCKDB_TYPE: Record<TableColumnType, DuckDBType> = { VARCHAR, BIGINT, DOUBLE, BOOLEAN };
/** Dates are bound as text, as view columns hold them (FHIR dates may be partial: `2020-03`). */
const PARAMETER_TYPE: Record<SqlParameterType, DuckDBType> = { string: VARCHAR, integer: BIGINT, decimal: DOUBLE, boolean: BOOLEAN, date: VARCHAR, dateTime: VARCHAR };

/**
 * A new database that can read and write nothing but itself and its spill directory, its
 * settings locked. No setting a query could read names a host path but the spill directory's,
 * and read-guard.ts keeps queries away from the settings.
 */
async function lockedDatabase(limits: EngineLimits, spillDirectory: string | undefined): Promise<{ instance: DuckDBInstance; connection: DuckDBConnection }> {
  const instance = await DuckDBInstance.create(':memory:', {
    autoload_known_extensions: 'false',
    autoinstall_known_extensions: 'false',
    allow_community_extensions: 'false',
    allow_unsigned_extensions: 'false',
    threads: String(limits.threads),
    memory_limit: limits.memoryLimit,
  });
  const connection = await instance.connect();
  try {
    const text = (value: string) => `'${value.replaceAll("'", "''")}'`;
    for (const setting of [
      `SET temp_directory = ${text(spillDirectory ?? '')}`,
      `SET max_temp_directory_size = '${limits.spillLimitMb}MB'`,
      "SET secret_directory = ''",
      "SET extension_directory = ''",
      "SET home_directory = ''",
      'SET enable_external_access = false',
      'SET lock_configuration = true',
    ]) {
      await connection.run(setting);
    }
  } catch (err) {
    connection.closeSync();
    instance.closeSync();
    throw err;
  }
  return { instance, connection };
}

/** A directory of its own for one query's spill files, or none when the engine may not spill. */
async function spillDirectoryFor(limits: EngineLimits): Promise<string | undefined> {
  if (limits.spillDirectory === undefined) return undefined;
  await mkdir(limits.spillDirectory, { recursive: true });
  return mkdtemp(path.join(limits.spillDirectory, 'query-'));
}

/** How each engine type's values leave the engine, and which kind of column that is (result-columns.ts). */
const T = DuckDBTypeId;
const KINDS: Partial<Record<DuckDBTypeId, ResultKind>> = {
  [T.BOOLEAN]: 'boolean',
  [T.TINYINT]: 'integer',
  [T.SMALLINT]: 'integer',
  [T.INTEGER]: 'integer',
  [T.UTINYINT]: 'integer',
  [T.USMALLINT]: 'integer',
  [T.UINTEGER]: 'integer64',
  [T.BIGINT]: 'integer64',
  [T.UBIGINT]: 'integer64',
  [T.HUGEINT]: 'integer64',
  [T.UHUGEINT]: 'integer64',
  [T.FLOAT]: 'decimal',
  [T.DOUBLE]: 'decimal',
  [T.DECIMAL]: 'decimal',
  [T.BLOB]: 'base64',
  [T.DATE]: 'date',
  [T.TIME]: 'time',
  [T.TIME_NS]: 'time',
  [T.TIME_TZ]: 'time',
  [T.TIMESTAMP]: 'dateTime',
  [T.TIMESTAMP_S]: 'dateTime',
  [T.TIMESTAMP_MS]: 'dateTime',
  [T.TIMESTAMP_NS]: 'dateTime',
  [T.TIMESTAMP_TZ]: 'instant',
  [T.INTERVAL]: 'nested',
  [T.LIST]: 'nested',
  [T.ARRAY]: 'nested',
  [T.STRUCT]: 'nested',
  [T.MAP]: 'nested',
  [T.UNION]: 'nested',
  [T.VARIANT]: 'nested',
};
const kindOf = (type: DuckDBType): ResultKind => KINDS[type.typeId] ?? 'string';

type Plain = unknown;
const integerValue = (value: DuckDBValue): Plain => {
  const n = BigInt(value as bigint);
  return Number.isSafeInteger(Number(n)) ? Number(n) : n.toString();
};
const isoTime = (toDate: (v: DuckDBValue) => Date) => (value: DuckDBValue) => toDate(value).toISOString(); // milliseconds, UTC
const CONVERT: Partial<Record<DuckDBTypeId, (value: DuckDBValue, type: DuckDBType, converter: DuckDBValueConverter<Plain>) => Plain>> = {
  [T.BOOLEAN]: booleanFromValue,
  [T.TINYINT]: numberFromValue,
  [T.SMALLINT]: numberFromValue,
  [T.INTEGER]: numberFromValue,
  [T.UTINYINT]: numberFromValue,
  [T.USMALLINT]: numberFromValue,
  [T.UINTEGER]: numberFromValue,
  [T.BIGINT]: integerValue,
  [T.UBIGINT]: integerValue,
  [T.HUGEINT]: integerValue,
  [T.UHUGEINT]: integerValue,
  [T.FLOAT]: numberFromValue,
  [T.DOUBLE]: numberFromValue,
  [T.DECIMAL]: doubleFromDecimalValue,
  [T.BLOB]: (value) => Buffer.from(bytesFromBlobValue(value)).toString('base64'),
  [T.TIME]: (value) => String(value).slice(0, 12), // HH:MM:SS.fff
  [T.TIME_NS]: (value) => String(value).slice(0, 12),
  [T.TIMESTAMP]: isoTime(dateFromTimestampValue),
  [T.TIMESTAMP_S]: isoTime(dateFromTimestampSecondsValue),
  [T.TIMESTAMP_MS]: isoTime(dateFromTimestampMillisecondsValue),
  [T.TIMESTAMP_NS]: isoTime(dateFromTimestampNanosecondsValue),
  [T.TIMESTAMP_TZ]: isoTime(dateFromTimestampTZValue),
  [T.INTERVAL]: jsonObjectFromIntervalValue,
  [T.LIST]: arrayFromListValue,
  [T.ARRAY]: arrayFromArrayValue,
  [T.STRUCT]: objectFromStructValue,
  [T.MAP]: objectArrayFromMapValue,
  [T.UNION]: objectFromUnionValue,
};
/** Every value as a boolean, number, string or JSON: what the row writers take (DATE, TIME_TZ, UUID, ENUM, VARCHAR: their text). */
const plainValues: DuckDBValueConverter<Plain> = (value, type, converter) => (value === null || value === undefined ? null : (CONVERT[type.typeId] ?? stringFromValue)(value, type, converter));

function append(appender: DuckDBAppender, type: TableColumnType, value: unknown): void {
  if (value === null || value === undefined) return appender.appendNull();
  switch (type) {
    case 'VARCHAR':
      return appender.appendVarchar(String(value));
    case 'BIGINT':
      return appender.appendBigInt(BigInt(value as number | bigint));
    case 'DOUBLE':
      return appender.appendDouble(Number(value));
    case 'BOOLEAN':
      return appender.appendBoolean(Boolean(value));
  }
}

/** Makes `table` in the engine; `stop` throws once the query is stopped (its time is up, its client gone). */
async function materialise(connection: DuckDBConnection, table: SqlTable, maxRows: number, stop: () => void): Promise<number> {
  if (!LABEL.test(table.name)) throw new SqlRefused('invalid', `${JSON.stringify(table.name)} is not a table name (letters, digits and _, starting with a letter)`);
  await connection.run(`CREATE TABLE ${quote(table.name)} (${table.columns.map((c) => `${quote(c.name)} ${c.type}`).join(', ')})`);
  const appender = await connection.createAppender(table.name);
  let rows = 0;
  try {
    for await (const batch of table.rows) {
      stop();
      rows += batch.length;
      if (rows > maxRows) throw new SqlRefused('too-costly', `The table ${table.name} would hold more than ${maxRows} rows, the most one table of a query may hold (SQL_MAX_TABLE_ROWS)`);
      for (const row of batch) {
        table.columns.forEach((column, i) => append(appender, column.type, row[i]));
        appender.endRow();
      }
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
  return rows;
}

/** What DuckDB's error means for the client, with the spill directory's host path left out. */
function refusal(err: unknown, timedOut: boolean, spillDirectory: string | undefined): SqlRefused {
  const raw = err instanceof Error ? err.message : String(err);
  const message = spillDirectory ? raw.replaceAll(spillDirectory, '<spill directory>') : raw;
  if (timedOut || /^INTERRUPT/i.test(message)) return new SqlRefused('timeout', 'The query ran past its time limit and was stopped');
  if (/max_temp_directory_size/i.test(message)) return new SqlRefused('too-costly', 'The query needs more room than it may spill to disk (SQL_SPILL_LIMIT_MB)');
  if (/Out of Memory/i.test(message)) return new SqlRefused('too-costly', `The query needs more memory than it may use: ${message}`);
  if (/Permission Error|external access|Cannot change configuration/i.test(message)) return new SqlRefused('invalid', `The query may read only the tables it depends on: ${message}`);
  return new SqlRefused('processing', message);
}

/**
 * One SELECT by DuckDB's own parser and by its first word (DuckDB turns some PRAGMA and SHOW
 * into SELECTs), reading nothing but `tables` (read-guard.ts).
 */
async function preparedSelect(connection: DuckDBConnection, sql: string, what: string, reads: { tables: ReadonlySet<string>; engineNames: ReadonlySet<string> }) {
  const statements = await connection.extractStatements(sql).catch((err: unknown) => Promise.reject(new SqlRefused('processing', `${what}: ${(err as Error).message}`)));
  if (statements.count !== 1) throw new SqlRefused('invalid', `${what} must be exactly one statement, got ${statements.count}`);
  if (!['SELECT', 'WITH'].includes(leadingKeyword(sql))) throw new SqlRefused('invalid', `${what} must be a SELECT (or WITH ... SELECT)`);
  await refuseOutsideReads(connection, sql, reads.tables, reads.engineNames, what); // before binding: binding a table function already runs it
  const prepared = await statements.prepare(0);
  if (prepared.statementType !== StatementType.SELECT) throw new SqlRefused('invalid', `${what} must be a SELECT (or WITH ... SELECT)`);
  return prepared;
}

/** Bytes a plain value holds, near enough to cap a result before it is encoded. */
function plainBytes(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + plainBytes(item), 2);
  if (value !== null && typeof value === 'object') return Object.entries(value).reduce((sum, [key, item]) => sum + key.length + plainBytes(item), 2);
  return 8;
}

/**
 * The result's rows as plain values, a chunk at a time and a row at a time within it, refused
 * as soon as they pass the row or byte cap: a huge result is stopped while the engine makes it.
 */
async function* plainChunks(result: DuckDBResult, limits: EngineLimits, timedOut: () => boolean): AsyncGenerator<unknown[][]> {
  const types = Array.from({ length: result.columnCount }, (_, i) => result.columnType(i));
  const rowsCap = () => new SqlRefused('too-costly', `The query's result has more than ${limits.maxResultRows} rows, the most one query may give (SQL_RUN_MAX_ROWS for $sql-run, SQL_EXPORT_MAX_ROWS for an export); narrow it, or ask for fewer with _limit`);
  const bytesCap = () => new SqlRefused('too-costly', `The query's result holds more than ${Math.floor(limits.maxResultBytes / (1024 * 1024))} MB, the most one $sql-run may answer with (SQL_RUN_MAX_RESULT_MB); narrow it, or write it to files with $sql-export`);
  let rows = 0;
  let bytes = 0;
  for (let chunk = await result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    if ((rows += chunk.rowCount) > limits.maxResultRows) throw rowsCap();
    const plain: unknown[][] = [];
    for (let r = 0; r < chunk.rowCount; r++) {
      if (timedOut()) throw new SqlRefused('timeout', 'The query ran past its time limit and was stopped');
      const row = chunk.getRowValues(r).map((value, c) => plainValues(value, types[c], plainValues));
      if ((bytes += plainBytes(row)) > limits.maxResultBytes) throw bytesCap();
      plain.push(row);
    }
    yield plain;
  }
}

/**
 * Runs `sql` over `tables` (and `views`: SQLViews, each a SELECT over what comes before it,
 * made tables in order) with `parameters` bound. The result streams until read to its end or
 * abandoned (`chunks.return()`), then the database is closed and its spill directory removed.
 * `signal` interrupts the query inside the engine. Refusals are SqlRefused.
 */
export async function runSql(request: {
  tables: readonly SqlTable[];
  views?: ReadonlyArray<{ name: string; sql: string }>;
  sql: string;
  parameters: readonly SqlParameter[];
  limits: EngineLimits;
  /** Prepare only: the SQL checked and its columns known, nothing run. */
  dryRun?: boolean;
  signal?: AbortSignal;
}): Promise<SqlResult> {
  const started = performance.now();
  const { limits, signal } = request;
  if (signal?.aborted) throw signal.reason;
  const spillDirectory = await spillDirectoryFor(limits);
  let timedOut = false;
  let opened: { instance: DuckDBInstance; connection: DuckDBConnection } | undefined;
  const interrupt = () => opened?.connection.interrupt(); // before the database is open, `stop` catches it at the next step
  const timer = setTimeout(() => {
    timedOut = true;
    interrupt();
  }, limits.timeoutMs);
  signal?.addEventListener('abort', interrupt);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', interrupt);
    opened?.connection.closeSync();
    opened?.instance.closeSync();
    if (spillDirectory) await rm(spillDirectory, { recursive: true, force: true });
  };
  const failure = (err: unknown) => (signal?.aborted ? signal.reason : err instanceof SqlRefused ? err : refusal(err, timedOut, spillDirectory));
  try {
    /** Throws once the query's time is up or its caller has gone. */
    const stop = () => {
      if (signal?.aborted) throw signal.reason;
      if (timedOut) throw new SqlRefused('timeout', 'The query ran past its time limit and was stopped');
    };
    opened = await lockedDatabase(limits, spillDirectory);
    const { connection } = opened;
    stop();
    const engineNames = await engineCatalogNames(connection);
    const tables = new Set<string>();
    const tableRows: Record<string, number> = {};
    for (const table of request.tables) {
      tableRows[table.name] = await materialise(connection, table, limits.maxTableRows, stop);
      tables.add(table.name.toLowerCase());
    }
    for (const view of request.views ?? []) {
      if (!LABEL.test(view.name)) throw new SqlRefused('invalid', `${JSON.stringify(view.name)} is not a table name (letters, digits and _, starting with a letter)`);
      const select = await preparedSelect(connection, view.sql, `The SQLView ${view.name}`, { tables, engineNames });
      if (select.parameterCount > 0) throw new SqlRefused('invalid', `The SQLView ${view.name} takes no parameters`);
      select.destroySync();
      await connection.run(`CREATE TABLE ${quote(view.name)} AS ${view.sql}`);
      tables.add(view.name.toLowerCase());
    }
    const materialiseMs = performance.now() - started;
    const declared = new Map(request.parameters.map((p) => [p.name, p]));
    const { sql, used } = rewritePlaceholders(request.sql, new Set(declared.keys()));
    const prepared = await preparedSelect(connection, sql, 'The query', { tables, engineNames });
    const values = Object.fromEntries(used.map((name) => [name, declared.get(name)!.type === 'integer' ? BigInt(declared.get(name)!.value as number) : declared.get(name)!.value]));
    const types = Object.fromEntries(used.map((name) => [name, PARAMETER_TYPE[declared.get(name)!.type]]));
    if (prepared.parameterCount !== used.length) throw new SqlRefused('invalid', 'The query uses a parameter that is not declared (parameters are written :name)');
    prepared.bind(values, types);
    if (request.dryRun) {
      const columns = Array.from({ length: prepared.columnCount }, (_, i) => ({ name: prepared.columnName(i), type: prepared.columnType(i).toString(), kind: kindOf(prepared.columnType(i)) }));
      await close();
      return { columns, chunks: (async function* () {})(), stats: { materialiseMs, tableRows }, close };
    }
    stop();
    const result = await prepared.stream();
    const columns = result.columnNames().map((name, i) => ({ name, type: result.columnType(i).toString(), kind: kindOf(result.columnType(i)) }));
    const chunks = (async function* () {
      try {
        yield* plainChunks(result, limits, () => timedOut);
      } catch (err) {
        throw failure(err);
      } finally {
        await close();
      }
    })();
    return { columns, chunks, stats: { materialiseMs, tableRows }, close };
  } catch (err) {
    await close();
    throw failure(err);
  }
}
