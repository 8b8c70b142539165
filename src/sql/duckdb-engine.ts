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
  type DuckDBType,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import { leadingKeyword, rewritePlaceholders } from './placeholders';
import type { ResultKind } from './result-columns';
import { SqlRefused, type EngineLimits, type SqlParameter, type SqlParameterType, type SqlResult, type SqlTable, type TableColumnType } from './engine-types';

export * from './engine-types';

const LABEL = /^[A-Za-z][A-Za-z0-9_]*$/;
const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;
const DUCKDB_TYPE: Record<TableColumnType, DuckDBType> = { VARCHAR, BIGINT, DOUBLE, BOOLEAN };
/** Dates are bound as text, as view columns hold them (FHIR dates may be partial: `2020-03`). */
const PARAMETER_TYPE: Record<SqlParameterType, DuckDBType> = { string: VARCHAR, integer: BIGINT, decimal: DOUBLE, boolean: BOOLEAN, date: VARCHAR, dateTime: VARCHAR };

/** A new database that can read and write nothing but itself, its settings locked. */
async function lockedDatabase(limits: EngineLimits): Promise<DuckDBInstance> {
  return DuckDBInstance.create(':memory:', {
    enable_external_access: 'false',
    autoload_known_extensions: 'false',
    autoinstall_known_extensions: 'false',
    allow_community_extensions: 'false',
    allow_unsigned_extensions: 'false',
    threads: String(limits.threads),
    memory_limit: limits.memoryLimit,
    lock_configuration: 'true',
  });
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

async function materialise(connection: DuckDBConnection, table: SqlTable, maxRows: number): Promise<number> {
  if (!LABEL.test(table.name)) throw new SqlRefused('invalid', `${JSON.stringify(table.name)} is not a table name (letters, digits and _, starting with a letter)`);
  await connection.run(`CREATE TABLE ${quote(table.name)} (${table.columns.map((c) => `${quote(c.name)} ${c.type}`).join(', ')})`);
  const appender = await connection.createAppender(table.name);
  let rows = 0;
  try {
    for await (const batch of table.rows) {
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

/** What DuckDB's error means for the client. */
function refusal(err: unknown, timedOut: boolean): SqlRefused {
  const message = err instanceof Error ? err.message : String(err);
  if (timedOut || /^INTERRUPT/i.test(message)) return new SqlRefused('timeout', 'The query ran past its time limit and was stopped');
  if (/Out of Memory/i.test(message)) return new SqlRefused('too-costly', `The query needs more memory than it may use: ${message}`);
  if (/Permission Error|external access|Cannot change configuration/i.test(message)) return new SqlRefused('invalid', `The query may read only the tables it depends on: ${message}`);
  return new SqlRefused('processing', message);
}

/** One SELECT by DuckDB's own parser and by its first word (DuckDB turns some PRAGMA and SHOW into SELECTs). */
async function preparedSelect(connection: DuckDBConnection, sql: string, what: string) {
  const statements = await connection.extractStatements(sql).catch((err: unknown) => Promise.reject(new SqlRefused('processing', `${what}: ${(err as Error).message}`)));
  if (statements.count !== 1) throw new SqlRefused('invalid', `${what} must be exactly one statement, got ${statements.count}`);
  const prepared = await statements.prepare(0);
  if (prepared.statementType !== StatementType.SELECT || !['SELECT', 'WITH'].includes(leadingKeyword(sql))) throw new SqlRefused('invalid', `${what} must be a SELECT (or WITH ... SELECT)`);
  return prepared;
}

/**
 * Runs `sql` over `tables` (and `views`: SQLViews, each a SELECT over what comes before it,
 * made tables in order) with `parameters` bound. The result streams until read to its end or
 * abandoned (`chunks.return()`), then the database is closed; with `materialise` the engine
 * holds the whole result first (within its memory limit) and says how many rows it has.
 * `signal` interrupts the query inside the engine. Refusals are SqlRefused.
 */
export async function runSql(request: {
  tables: readonly SqlTable[];
  views?: ReadonlyArray<{ name: string; sql: string }>;
  sql: string;
  parameters: readonly SqlParameter[];
  limits: EngineLimits;
  materialise?: boolean;
  /** Prepare only: the SQL checked and its columns known, nothing run. */
  dryRun?: boolean;
  signal?: AbortSignal;
}): Promise<SqlResult> {
  const started = performance.now();
  const { limits, signal } = request;
  if (signal?.aborted) throw signal.reason;
  const instance = await lockedDatabase(limits);
  const connection = await instance.connect();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    connection.interrupt();
  }, limits.timeoutMs);
  const interrupt = () => connection.interrupt();
  signal?.addEventListener('abort', interrupt);
  const close = () => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', interrupt);
    connection.closeSync();
    instance.closeSync();
  };
  const failure = (err: unknown) => (signal?.aborted ? signal.reason : err instanceof SqlRefused ? err : refusal(err, timedOut));
  try {
    const tableRows: Record<string, number> = {};
    for (const table of request.tables) tableRows[table.name] = await materialise(connection, table, limits.maxTableRows);
    for (const view of request.views ?? []) {
      if (!LABEL.test(view.name)) throw new SqlRefused('invalid', `${JSON.stringify(view.name)} is not a table name (letters, digits and _, starting with a letter)`);
      const select = await preparedSelect(connection, view.sql, `The SQLView ${view.name}`);
      if (select.parameterCount > 0) throw new SqlRefused('invalid', `The SQLView ${view.name} takes no parameters`);
      select.destroySync();
      await connection.run(`CREATE TABLE ${quote(view.name)} AS ${view.sql}`);
    }
    const materialiseMs = performance.now() - started;
    const declared = new Map(request.parameters.map((p) => [p.name, p]));
    const { sql, used } = rewritePlaceholders(request.sql, new Set(declared.keys()));
    const prepared = await preparedSelect(connection, sql, 'The query');
    const values = Object.fromEntries(used.map((name) => [name, declared.get(name)!.type === 'integer' ? BigInt(declared.get(name)!.value as number) : declared.get(name)!.value]));
    const types = Object.fromEntries(used.map((name) => [name, PARAMETER_TYPE[declared.get(name)!.type]]));
    if (prepared.parameterCount !== used.length) throw new SqlRefused('invalid', 'The query uses a parameter that is not declared (parameters are written :name)');
    prepared.bind(values, types);
    if (request.dryRun) {
      const columns = Array.from({ length: prepared.columnCount }, (_, i) => ({ name: prepared.columnName(i), type: prepared.columnType(i).toString(), kind: kindOf(prepared.columnType(i)) }));
      close();
      return { columns, chunks: (async function* () {})(), stats: { materialiseMs, tableRows } };
    }
    const result = request.materialise ? await prepared.run() : await prepared.stream();
    const columns = result.columnNames().map((name, i) => ({ name, type: result.columnType(i).toString(), kind: kindOf(result.columnType(i)) }));
    const rowCount = request.materialise ? Number((result as unknown as { rowCount: number }).rowCount) : undefined;
    const tooMany = () => new SqlRefused('too-costly', `The query's result has more than ${limits.maxResultRows} rows, the most one query may give (SQL_RUN_MAX_ROWS for $sql-run, SQL_EXPORT_MAX_ROWS for an export); narrow it, or ask for fewer with _limit`);
    if (rowCount !== undefined && rowCount > limits.maxResultRows) throw tooMany();
    const chunks = (async function* () {
      let rows = 0;
      try {
        for await (const chunk of result.yieldConvertedRows(plainValues)) {
          rows += chunk.length;
          if (rows > limits.maxResultRows) throw tooMany();
          yield chunk as unknown[][];
        }
      } catch (err) {
        throw failure(err);
      } finally {
        close();
      }
    })();
    return { columns, chunks, stats: { materialiseMs, tableRows }, rowCount };
  } catch (err) {
    close();
    throw failure(err);
  }
}
