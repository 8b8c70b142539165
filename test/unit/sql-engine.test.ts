/**
 * The embedded SQL engine as an attacker meets it: only the query's own tables, one SELECT,
 * parameters that are data, no files, no extensions, no settings, a timeout and a memory cap
 * that end the query and leave the process serving the next one.
 */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runSql, SqlRefused, type EngineLimits, type SqlParameter, type SqlTable } from '../../src/sql/duckdb-engine';

const limits: EngineLimits = { threads: 1, memoryLimit: '128MB', timeoutMs: 2_000, maxTableRows: 1_000_000, maxResultRows: 1_000_000, maxResultBytes: Infinity, spillLimitMb: 64 };

const patients = (): SqlTable => ({
  name: 'patient',
  columns: [
    { name: 'id', type: 'VARCHAR' },
    { name: 'family', type: 'VARCHAR' },
    { name: 'gender', type: 'VARCHAR' },
  ],
  rows: [
    [
      ['p1', 'Smith', 'female'],
      ['p2', "Smith'; DROP TABLE patient; --", 'male'],
    ],
    [['p3', 'Jones', null]],
  ],
});
const observations = (): SqlTable => ({
  name: 'obs',
  columns: [
    { name: 'id', type: 'VARCHAR' },
    { name: 'patient_id', type: 'VARCHAR' },
    { name: 'code', type: 'VARCHAR' },
    { name: 'value', type: 'DOUBLE' },
    { name: 'rank', type: 'BIGINT' },
    { name: 'final', type: 'BOOLEAN' },
  ],
  rows: [
    [
      ['o1', 'p1', '8302-2', 170.5, 1, true],
      ['o2', 'p1', '29463-7', 60, 2, false],
      ['o3', 'p3', '8302-2', 180, 3, true],
    ],
  ],
});

async function rows(sql: string, parameters: SqlParameter[] = [], tables: SqlTable[] = [patients(), observations()], given: EngineLimits = limits): Promise<unknown[][]> {
  const result = await runSql({ tables, sql, parameters, limits: given });
  const out: unknown[][] = [];
  for await (const chunk of result.chunks) out.push(...chunk);
  return out;
}

async function refusal(sql: string, parameters: SqlParameter[] = [], given: EngineLimits = limits): Promise<SqlRefused> {
  const err = await rows(sql, parameters, [patients(), observations()], given).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof SqlRefused)) throw new Error(`expected a refusal of ${sql}, got ${String(err)}`);
  return err;
}

describe('runSql', () => {
  it('joins the materialised tables with bound parameters of their declared types', async () => {
    const result = await runSql({
      tables: [patients(), observations()],
      sql: 'SELECT p.id, count(*) AS n, sum(o.value) AS total FROM patient p JOIN obs o ON o.patient_id = p.id WHERE o.code = :code AND o.rank <= :rank AND o.final = :final GROUP BY p.id ORDER BY p.id',
      parameters: [
        { name: 'code', type: 'string', value: '8302-2' },
        { name: 'rank', type: 'integer', value: 3 },
        { name: 'final', type: 'boolean', value: true },
      ],
      limits,
    });
    expect(result.columns).toEqual([
      { name: 'id', type: 'VARCHAR', kind: 'string' },
      { name: 'n', type: 'BIGINT', kind: 'integer64' },
      { name: 'total', type: 'DOUBLE', kind: 'decimal' },
    ]);
    const out: unknown[][] = [];
    for await (const chunk of result.chunks) out.push(...chunk);
    expect(out).toEqual([
      ['p1', 1, 170.5],
      ['p3', 1, 180],
    ]);
  });

  it('treats a parameter value as data, never as SQL', async () => {
    const injected = "Smith'; DROP TABLE patient; --";
    expect(await rows('SELECT id FROM patient WHERE family = :family', [{ name: 'family', type: 'string', value: injected }])).toEqual([['p2']]);
    expect(await rows("SELECT id FROM patient WHERE family = :family", [{ name: 'family', type: 'string', value: "x' OR '1'='1" }])).toEqual([]);
  });

  it('accepts WITH ... SELECT', async () => {
    expect(await rows('WITH f AS (SELECT id FROM patient WHERE gender = :g) SELECT count(*) FROM f', [{ name: 'g', type: 'string', value: 'female' }])).toEqual([[1]]);
  });

  it.each([
    ['two statements', 'SELECT 1; SELECT 2'],
    ['a statement after a select', 'SELECT 1; DROP TABLE patient'],
    ['DDL', 'CREATE TABLE x AS SELECT * FROM patient'],
    ['DML', "INSERT INTO patient VALUES ('p9', 'X', 'other')"],
    ['DELETE', 'DELETE FROM patient'],
    ['SET', "SET enable_external_access = true"],
    ['RESET', 'RESET memory_limit'],
    ['PRAGMA', 'PRAGMA database_list'],
    ['SHOW', 'SHOW TABLES'],
    ['DESCRIBE', 'DESCRIBE patient'],
    ['CALL', 'CALL duckdb_settings()'],
    ['ATTACH', "ATTACH 'other.db' AS other"],
    ['INSTALL', 'INSTALL httpfs'],
    ['LOAD', 'LOAD httpfs'],
    ['COPY', "COPY patient TO 'patients.csv'"],
    ['EXPORT DATABASE', "EXPORT DATABASE 'dump'"],
    ['a positional parameter', 'SELECT * FROM patient WHERE id = $1'],
  ])('refuses %s as invalid', async (_what, sql) => {
    const refused = await refusal(sql);
    expect(refused.code).toBe('invalid');
  });

  it('reads no file, by any reader', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-sql-'));
    const file = path.join(dir, 'secret.csv');
    writeFileSync(file, 'a,b\n1,2\n');
    writeFileSync(path.join(dir, 'secret.json'), '{"a":1}\n');
    for (const sql of [
      `SELECT * FROM read_csv('${file}')`,
      `SELECT * FROM read_csv_auto('${file}')`,
      `SELECT * FROM '${file}'`,
      `SELECT * FROM read_json('${path.join(dir, 'secret.json')}')`,
      `SELECT * FROM read_parquet('${path.join(dir, 'x.parquet')}')`,
      `SELECT * FROM read_text('${file}')`,
      "SELECT * FROM glob('/etc/*')",
    ]) {
      const refused = await refusal(sql);
      expect([sql, refused.code]).toEqual([sql, 'invalid']);
    }
  });

  it('writes no file: COPY and EXPORT leave nothing behind', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-sql-'));
    await refusal(`COPY (SELECT * FROM patient) TO '${path.join(dir, 'out.csv')}'`);
    expect(existsSync(path.join(dir, 'out.csv'))).toBe(false);
  });

  it('stops a runaway recursive query at its time limit', async () => {
    const started = Date.now();
    const refused = await refusal('WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r', [], { ...limits, timeoutMs: 500 });
    expect(refused.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('ends a query that outgrows its memory limit, and the next query runs', async () => {
    // A cartesian blow-up gathered into one value: far past 64 MB at once.
    const refused = await refusal('SELECT list(a.range + b.range) FROM range(10000) a, range(10000) b', [], { ...limits, memoryLimit: '64MB', timeoutMs: 30_000 });
    expect(refused.code).toBe('too-costly');
    expect(refused.message).toContain('Out of Memory');
    expect(await rows('SELECT count(*) FROM patient')).toEqual([[3]]);
  });

  it('refuses a table name that is no label, and reports SQL errors with the engine\'s message', async () => {
    await expect(runSql({ tables: [{ ...patients(), name: 'x; DROP' }], sql: 'SELECT 1', parameters: [], limits })).rejects.toMatchObject({ code: 'invalid' });
    const unknown = await refusal('SELECT nope FROM patient');
    expect(unknown.code).toBe('processing');
    expect(unknown.message).toContain('nope');
    const syntax = await refusal('SELEC 1');
    expect(syntax.code).toBe('processing');
  });

  it('makes SQLViews tables in order, each over what comes before it', async () => {
    const result = await runSql({
      tables: [patients(), observations()],
      views: [
        { name: 'heights', sql: "SELECT patient_id, value FROM obs WHERE code = '8302-2'" },
        { name: 'tall', sql: 'WITH t AS (SELECT * FROM heights WHERE value > 175) SELECT p.family FROM t JOIN patient p ON p.id = t.patient_id' },
      ],
      sql: 'SELECT family FROM tall',
      parameters: [],
      limits,
    });
    const out: unknown[][] = [];
    for await (const chunk of result.chunks) out.push(...chunk);
    expect(out).toEqual([['Jones']]);
  });

  it.each([
    ['DDL', 'DROP TABLE patient'],
    ['two statements', 'SELECT 1; SELECT 2'],
    ['a parameter', 'SELECT * FROM patient WHERE id = $1'],
    ['a PRAGMA', 'PRAGMA database_list'],
  ])('refuses a SQLView that is %s', async (_what, sql) => {
    await expect(runSql({ tables: [patients()], views: [{ name: 'v', sql }], sql: 'SELECT 1', parameters: [], limits })).rejects.toMatchObject({ code: 'invalid' });
  });

  it('reads only the tables it was given and its own CTEs: the engine\'s catalog, settings and SQL-from-text functions are refused before anything runs', async () => {
    expect(await rows('WITH p AS (SELECT id FROM main.patient) SELECT count(*) FROM p, memory.main.obs o WHERE o.patient_id = p.id')).toEqual([[3]]);
    expect(await rows('SELECT count(*) FROM range(3), generate_series(1, 2), unnest([1, 2])')).toEqual([[12]]);
    for (const sql of [
      'SELECT table_name FROM information_schema.tables',
      'SELECT * FROM duckdb_databases()',
      "SELECT value FROM duckdb_settings() WHERE name = 'temp_directory'",
      'SELECT setting FROM pg_settings',
      'SELECT * FROM pg_catalog.pg_settings',
      "SELECT current_setting('temp_directory')",
      "SELECT * FROM query('SELECT 1')",
      "SELECT * FROM query_table('patient')",
      'SELECT * FROM (SHOW TABLES)',
      'SELECT * FROM (DESCRIBE patient)',
      "SELECT (WITH pg_settings AS (SELECT 1) SELECT 1), name FROM pg_settings", // a CTE may not lend its name to the engine's view outside its scope
      'SELECT * FROM system.main.duckdb_tables',
      'SELECT * FROM patient WHERE id IN (SELECT database_name FROM duckdb_databases())',
    ]) {
      await expect(rows(sql)).rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining('may read only the tables it depends on') });
    }
  });

  it('spills past its memory to a directory of its own, removed after the query; past the spill limit it is refused without naming the directory', async () => {
    const spillRoot = mkdtempSync(path.join(os.tmpdir(), 'sql-spill-'));
    const sorted = { ...limits, memoryLimit: '32MB', timeoutMs: 30_000, spillDirectory: spillRoot, spillLimitMb: 512 };
    const sql = "SELECT count(*), min(s) FROM (SELECT i::VARCHAR || repeat('x', 100) AS s FROM range(1500000) t(i) ORDER BY s DESC LIMIT 1400000)";
    const result = await runSql({ tables: [], sql, parameters: [], limits: sorted });
    let seen: string[] = [];
    const out: unknown[][] = [];
    for await (const chunk of result.chunks) {
      seen = readdirSync(spillRoot);
      out.push(...chunk);
    }
    const descending = Array.from({ length: 1_500_000 }, (_, i) => `${i}${'x'.repeat(100)}`).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    expect(out).toEqual([[1400000, descending[1_399_999]]]);
    expect(seen).toHaveLength(1); // its own directory while it ran...
    expect(readdirSync(spillRoot)).toEqual([]); // ...gone after
    const refusal = await runSql({ tables: [], sql, parameters: [], limits: { ...sorted, spillLimitMb: 4 } }).then(async (r) => {
      for await (const _ of r.chunks);
    }).catch((err: unknown) => err);
    expect(refusal).toMatchObject({ code: 'too-costly', message: expect.stringContaining('SQL_SPILL_LIMIT_MB') });
    expect(String((refusal as Error).message)).not.toContain(spillRoot);
    expect(readdirSync(spillRoot)).toEqual([]);
    // Without a spill directory the engine has none: the same sort is refused at its memory limit.
    await expect(rows(sql, [], [], { ...sorted, spillDirectory: undefined })).rejects.toMatchObject({ code: 'too-costly' });
  });

  it('refuses a result past its byte cap while the rows are made', async () => {
    await expect(rows("SELECT repeat('x', 1000) FROM range(2000)", [], [], { ...limits, maxResultBytes: 1_000_000 })).rejects.toMatchObject({ code: 'too-costly', message: expect.stringContaining('SQL_RUN_MAX_RESULT_MB') });
    expect(await rows("SELECT repeat('x', 1000) FROM range(900)", [], [], { ...limits, maxResultBytes: 1_000_000 })).toHaveLength(900);
  });

  it('gives each result column its kind and each value as plain JSON-able data', async () => {
    const sql = `SELECT true AS b, 7::SMALLINT AS small, 9007199254740993::BIGINT AS big, 12::HUGEINT AS huge, 1.25::DECIMAL(5,2) AS dec,
      '2020-02-29'::DATE AS d, '10:11:12.345678'::TIME AS t, '2020-01-02 03:04:05.678901'::TIMESTAMP AS ts,
      '\\xAA\\xBB'::BLOB AS bin, [1, 2] AS list, {'a': 1} AS struct, INTERVAL 1 DAY AS span, NULL::VARCHAR AS nothing`;
    const result = await runSql({ tables: [], sql, parameters: [], limits });
    expect(result.columns.map((c) => `${c.name}:${c.kind}`)).toEqual([
      'b:boolean', 'small:integer', 'big:integer64', 'huge:integer64', 'dec:decimal', 'd:date', 't:time', 'ts:dateTime', 'bin:base64', 'list:nested', 'struct:nested', 'span:nested', 'nothing:string',
    ]);
    const out: unknown[][] = [];
    for await (const chunk of result.chunks) out.push(...chunk);
    // Past 2^53 an integer keeps its digits as text; times are rounded to milliseconds.
    expect(out).toEqual([[true, 7, '9007199254740993', 12, 1.25, '2020-02-29', '10:11:12.345', '2020-01-02T03:04:05.678Z', Buffer.from([0xaa, 0xbb]).toString('base64'), [1, 2], { a: 1 }, { months: 0, days: 1, micros: '0' }, null]]);
  });

  it('refuses a table past its row cap before the query runs, and a result past its cap', async () => {
    await expect(runSql({ tables: [patients()], sql: 'SELECT 1', parameters: [], limits: { ...limits, maxTableRows: 2 } })).rejects.toMatchObject({ code: 'too-costly', message: expect.stringContaining('SQL_MAX_TABLE_ROWS') });
    // Refused when the cap is passed, while the rows are made.
    await expect(rows('SELECT * FROM range(10)', [], [], { ...limits, maxResultRows: 9 })).rejects.toMatchObject({ code: 'too-costly', message: expect.stringContaining('SQL_RUN_MAX_ROWS') });
    expect(await rows('SELECT * FROM range(10)', [], [], { ...limits, maxResultRows: 10 })).toHaveLength(10);
    expect(await rows('SELECT * FROM range(5000)', [], [], { ...limits, maxResultRows: 5000 })).toHaveLength(5000);
    await expect(rows('SELECT * FROM range(5001)', [], [], { ...limits, maxResultRows: 5000 })).rejects.toMatchObject({ code: 'too-costly' });
  });

  it('stops a running query when its signal aborts, with the signal\'s reason', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('cancelled by the client')), 300);
    const run = runSql({ tables: [], sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r', parameters: [], limits: { ...limits, timeoutMs: 60_000 }, signal: controller.signal });
    await expect(run).rejects.toThrow('cancelled by the client');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
