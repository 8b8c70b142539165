/**
 * What a query may read, decided on DuckDB's own parse tree (`json_serialize_sql`) before it
 * runs: the tables it depends on and its own CTEs, the row generators in TABLE_FUNCTIONS, and
 * nothing of the engine itself. External access is already off (no file can be read); this
 * keeps the engine's catalog and settings (`duckdb_settings()`, `pg_settings`,
 * `current_setting`, which name the spill directory on the host) and the functions that run SQL
 * from a string (`query`, `query_table`) out of reach. Everything not listed here is refused.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { VARCHAR } from '@duckdb/node-api';
import { SqlRefused } from './engine-types';

/** FROM-clause shapes a query may use; a SHOW, DESCRIBE or anything new in the engine is refused. */
const TABLE_REFS = new Set(['BASE_TABLE', 'JOIN', 'SUBQUERY', 'TABLE_FUNCTION', 'EXPRESSION_LIST', 'EMPTY', 'PIVOT']);
/** Table functions that make rows from their arguments alone. */
const TABLE_FUNCTIONS = new Set(['range', 'generate_series', 'unnest', 'json_each', 'json_tree']);
/** Scalar functions that read the engine's state. */
const SCALAR_FUNCTIONS_REFUSED = new Set(['current_setting', 'getvariable', 'write_log', 'duckdb_profiling_settings', 'json_execute_serialized_sql']);
const OWN_SCHEMA = new Set(['', 'main']);
const OWN_CATALOG = new Set(['', 'memory']);

type Node = Record<string, unknown>;
const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null && !Array.isArray(value);
/** A FROM item, as the serializer writes it: a string type, an alias and a sample, and no expression class. */
const isTableRef = (node: Node) => typeof node.type === 'string' && !('class' in node) && 'alias' in node && 'sample' in node;

function* nodes(value: unknown): Generator<Node> {
  if (Array.isArray(value)) for (const item of value) yield* nodes(item);
  else if (isNode(value)) {
    yield value;
    for (const child of Object.values(value)) yield* nodes(child);
  }
}

const refused = (what: string, name: string) => new SqlRefused('invalid', `${what} may read only the tables it depends on and its own CTEs; ${name} is not one of them`);

/**
 * Refuses `sql` (one SELECT, parsed already) if it reads anything but `tables` (its
 * dependencies and the SQLViews before it) and its own CTEs. `engineNames` are the catalog
 * entries the engine has by itself (a CTE may not take one's name: outside the CTE's scope the
 * name would read the engine's).
 */
export async function refuseOutsideReads(connection: DuckDBConnection, sql: string, tables: ReadonlySet<string>, engineNames: ReadonlySet<string>, what: string): Promise<void> {
  const serialized = await connection.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR) AS tree', [sql], [VARCHAR]);
  const tree = JSON.parse(String(serialized.getRows()[0][0])) as Node;
  if (tree.error) throw new SqlRefused('invalid', `${what}: ${String(tree.error_message ?? 'cannot be parsed')}`);
  const all = [...nodes(tree.statements)];
  const ctes = new Set<string>();
  for (const node of all) {
    for (const entry of ((node.cte_map as Node | undefined)?.map as Array<{ key: string }> | undefined) ?? []) {
      const name = entry.key.toLowerCase();
      if (engineNames.has(name) && !tables.has(name)) throw refused(what, `a CTE named ${entry.key}`);
      ctes.add(name);
    }
  }
  for (const node of all) {
    if (node.class === 'FUNCTION' && SCALAR_FUNCTIONS_REFUSED.has(String(node.function_name).toLowerCase())) throw refused(what, `${String(node.function_name)}()`);
    if (!isTableRef(node)) continue;
    if (!TABLE_REFS.has(node.type as string)) throw refused(what, `a ${String(node.type).toLowerCase().replaceAll('_', ' ')}`);
    if (node.type === 'TABLE_FUNCTION') {
      const fn = node.function as Node;
      if (fn.class !== 'FUNCTION' || !TABLE_FUNCTIONS.has(String(fn.function_name).toLowerCase()) || !OWN_SCHEMA.has(String(fn.schema ?? ''))) throw refused(what, `${String(fn.function_name)}()`);
    }
    if (node.type === 'BASE_TABLE') {
      const name = String(node.table_name).toLowerCase();
      const qualified = [node.catalog_name, node.schema_name, node.table_name].filter(Boolean).join('.');
      if (!OWN_CATALOG.has(String(node.catalog_name ?? '').toLowerCase()) || !OWN_SCHEMA.has(String(node.schema_name ?? '').toLowerCase())) throw refused(what, qualified);
      if (!tables.has(name) && !ctes.has(name)) throw refused(what, qualified);
    }
  }
}

/** The engine's own catalog entries (its views: pg_settings, duckdb_tables, information_schema...), lower-cased. */
export async function engineCatalogNames(connection: DuckDBConnection): Promise<Set<string>> {
  const rows = await connection.runAndReadAll('SELECT lower(view_name) FROM duckdb_views() UNION SELECT lower(table_name) FROM duckdb_tables()');
  return new Set(rows.getRows().map((row) => String(row[0])));
}
