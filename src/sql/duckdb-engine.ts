/**
 * SQL over views (SQLQuery Libraries) in DuckDB, embedded: one fresh in-memory database per
 * execution, holding nothing but the tables the query depends on. Locked down before any user
 * SQL is seen: external access off (no file, COPY, ATTACH, INSTALL/LOAD, read_csv), extension
 * autoload and autoinstall off, threads and memory capped, the configuration locked so the
 * query cannot undo any of it. The user's SQL must parse, by DuckDB's own parser, as exactly one
 * SELECT; parameters are bound with their declared types; a wall-clock timeout interrupts it
 * inside the engine, and running out of memory is this query's error, not the process's.
 */
import { BIGINT, BOOLEAN, DOUBLE, DuckDBInstance, StatementType, VARCHAR, type DuckDBAppender, type DuckDBConnection, type DuckDBType } from '@duckdb/node-api';
import { leadingKeyword, rewritePlaceholders } from './placeholders';
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

async function materialise(connection: DuckDBConnection, table: SqlTable): Promise<void> {
  if (!LABEL.test(table.name)) throw new SqlRefused('invalid', `${JSON.stringify(table.name)} is not a table name (letters, digits and _, starting with a letter)`);
  await connection.run(`CREATE TABLE ${quote(table.name)} (${table.columns.map((c) => `${quote(c.name)} ${c.type}`).join(', ')})`);
  const appender = await connection.createAppender(table.name);
  try {
    for await (const batch of table.rows) {
      for (const row of batch) {
        table.columns.forEach((column, i) => append(appender, column.type, row[i]));
        appender.endRow();
      }
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
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
 * made tables in order) with `parameters` bound; the result streams until read to its end or
 * abandoned (\`chunks.return()\`), then the database is closed. Refusals are SqlRefused.
 */
export async function runSql(request: {
  tables: readonly SqlTable[];
  views?: ReadonlyArray<{ name: string; sql: string }>;
  sql: string;
  parameters: readonly SqlParameter[];
  limits: EngineLimits;
}): Promise<SqlResult> {
  const instance = await lockedDatabase(request.limits);
  const connection = await instance.connect();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    connection.interrupt();
  }, request.limits.timeoutMs);
  const close = () => {
    clearTimeout(timer);
    connection.closeSync();
    instance.closeSync();
  };
  try {
    for (const table of request.tables) await materialise(connection, table);
    for (const view of request.views ?? []) {
      if (!LABEL.test(view.name)) throw new SqlRefused('invalid', `${JSON.stringify(view.name)} is not a table name (letters, digits and _, starting with a letter)`);
      const select = await preparedSelect(connection, view.sql, `The SQLView ${view.name}`);
      if (select.parameterCount > 0) throw new SqlRefused('invalid', `The SQLView ${view.name} takes no parameters`);
      select.destroySync();
      await connection.run(`CREATE TABLE ${quote(view.name)} AS ${view.sql}`);
    }
    const declared = new Map(request.parameters.map((p) => [p.name, p]));
    const { sql, used } = rewritePlaceholders(request.sql, new Set(declared.keys()));
    const prepared = await preparedSelect(connection, sql, 'The query');
    const values = Object.fromEntries(used.map((name) => [name, declared.get(name)!.type === 'integer' ? BigInt(declared.get(name)!.value as number) : declared.get(name)!.value]));
    const types = Object.fromEntries(used.map((name) => [name, PARAMETER_TYPE[declared.get(name)!.type]]));
    if (prepared.parameterCount !== used.length) throw new SqlRefused('invalid', 'The query uses a parameter that is not declared (parameters are written :name)');
    prepared.bind(values, types);
    const result = await prepared.stream();
    const columns = result.columnNames().map((name, i) => ({ name, type: result.columnType(i).toString() }));
    const chunks = (async function* () {
      try {
        for await (const rows of result.yieldRowsJs()) yield rows as unknown[][];
      } catch (err) {
        throw refusal(err, timedOut);
      } finally {
        close();
      }
    })();
    return { columns, chunks };
  } catch (err) {
    close();
    throw err instanceof SqlRefused ? err : refusal(err, timedOut);
  }
}
