/**
 * A store just written, as a new user has it: a database created for this file, a population
 * generated into it, nothing analyzed (autovacuum is off here, and nothing in bulkflow runs
 * ANALYZE). Patient- and Group-level exports complete with exactly the expected resources, and
 * every statement the API and the worker ran for them has a plan that visits each row it
 * reaches by key: no loop rescans a type's versions (or a recording, or a compartment) per row.
 * Nothing here is timed: the plans are checked, as PostgreSQL chose them.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { generatePopulation } from '../../src/generate/population';
import { REFERENCED_TYPES } from '../../src/fhir/patient-compartment';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { createPool, dropDatabase, ensureDatabase } from '../../src/store/database';
import { SNAPSHOT_INDEX_PREDICATE } from '../../src/store/snapshot-scope';
import { migrate } from '../../src/store/migrate';
import { testEnvironment } from '../harness/environment';
import { awaitExport, downloadAll, downloadDeleted, kickoffHeaders, startExportStack, type ExportStack } from '../support/export-stack';

interface PlanNode {
  'Node Type': string;
  'Parent Relationship'?: string;
  'Subplan Name'?: string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Plans?: PlanNode[];
}

/** Tables that grow with the store: reaching their rows once per row of another is quadratic unless it is a probe by key. */
const STORE_TABLES = new Set(['resource_versions', 'compartment_memberships', 'export_references', 'provenance_targets', 'resource_references', 'group_memberships']);
const KEY_COLUMNS = new Set(['id', 'resource_id', 'target_id', 'patient_id', 'source_id', 'group_id', 'member_id']);

/** Each index's columns in order, by index name. */
export type IndexColumns = Map<string, string[]>;

/**
 * Whether an index condition probes by key: the columns it binds by equality form a prefix of
 * the index that reaches a key column. `id = x` on an index that leads with (tenant, type,
 * last_updated, id) does not: the scan walks every version of the type and filters on id.
 */
function probesByKey(condition: string, columns: string[] | undefined): boolean {
  if (!columns) return false;
  const bound = new Set([...condition.matchAll(/\((\w+) = /g)].map((m) => m[1]));
  for (const column of columns) {
    if (!bound.has(column)) return false;
    if (KEY_COLUMNS.has(column)) return true;
  }
  return false;
}

/** The names of the indexes a plan reads. */
export function indexesUsed(node: PlanNode, found = new Set<string>()): Set<string> {
  if (node['Index Name']) found.add(node['Index Name']);
  for (const child of node.Plans ?? []) indexesUsed(child, found);
  return found;
}

/** Scans of store tables that run once per row of something else without a key to go by. */
export function rescansPerRow(node: PlanNode, indexes: IndexColumns, perRow = false, found: string[] = []): string[] {
  if (perRow && node['Relation Name'] && STORE_TABLES.has(node['Relation Name'])) {
    const probe = node['Index Name'] ? node : (node.Plans ?? []).find((p) => p['Index Name']);
    const condition = probe?.['Index Cond'] ?? '';
    const indexName = probe?.['Index Name'];
    if (!probesByKey(condition, indexName ? indexes.get(indexName) : undefined)) {
      found.push(`${node['Node Type']} on ${node['Relation Name']}${indexName ? ` using ${indexName} (${indexes.get(indexName)?.join(', ')})` : ''} (${condition || 'no condition'})`);
    }
  }
  for (const child of node.Plans ?? []) {
    const inner = node['Node Type'] === 'Nested Loop' && child['Parent Relationship'] === 'Inner';
    const correlated = child['Parent Relationship'] === 'SubPlan' && !/hashed/.test(child['Subplan Name'] ?? '');
    rescansPerRow(child, indexes, perRow || inner || correlated, found);
  }
  return found;
}

describe('exports on a freshly generated store (nothing analyzed)', () => {
  const databaseUrl = (() => {
    const url = new URL(testEnvironment.databaseUrl);
    url.pathname = `/bulkflow_fresh_${randomUUID().slice(0, 8)}`;
    return url.toString();
  })();
  let pool: Pool;
  let stack: ExportStack;
  let capturing = false;
  /** Each statement with the planner settings its transaction ran it under (`SET LOCAL`). */
  const statements: Array<{ text: string; values?: unknown[]; settings: string[] }> = [];
  const population = [...generatePopulation({ patients: 40, seed: 21 })];
  const groupId = population.find((r) => r.resourceType === 'Group')!.id!;

  beforeAll(async () => {
    await ensureDatabase(databaseUrl);
    pool = createPool(databaseUrl, { max: 8 });
    // Every statement any connection of the pool runs (the API's and the worker's) is recorded.
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      let settings: string[] = [];
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        const [first, values] = args as [string | { text?: string; values?: unknown[] }, unknown];
        const text = typeof first === 'string' ? first : first?.text;
        if (text && /^\s*(BEGIN|COMMIT|ROLLBACK)/i.test(text)) settings = [];
        else if (text && /^\s*SET LOCAL/i.test(text)) settings = [...settings, text];
        else if (capturing && text) statements.push({ text, values: Array.isArray(values) ? values : typeof first === 'object' ? first.values : undefined, settings });
        return query(...args);
      };
    });
    await migrate(pool);
    stack = await startExportStack({ pool });
    await stack.store.write(population.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
  });
  afterAll(async () => {
    await stack.close();
    await dropDatabase(databaseUrl);
  });

  const exported = async (path: string, init: RequestInit = { headers: kickoffHeaders }) => {
    const res = await fetch(`${stack.fhir}${path}`, init);
    if (res.status !== 202) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
    const { manifest } = await awaitExport(stack.client, res.headers.get('content-location')!, 60_000);
    return { manifest, resources: (await downloadAll(manifest)).keys.map((k) => k.replace(/\/\d+$/, '')).sort() };
  };

  /** What a Patient- or Group-level export of everyone holds: every compartment resource and what they reference. */
  const everyonesData = (resources: FhirResourceJson[]) => {
    const text = JSON.stringify(resources.filter((r) => !REFERENCED_TYPES.includes(r.resourceType)));
    return resources
      .filter((r) => !REFERENCED_TYPES.includes(r.resourceType) || text.includes(`"${r.resourceType}/${r.id}"`))
      .map((r) => `${r.resourceType}/${r.id}`)
      .sort();
  };

  it('starts from a store with no statistics at all', async () => {
    const { rows } = await pool.query<{ relname: string; reltuples: number }>(
      "SELECT relname, reltuples FROM pg_class WHERE relname IN ('resource_versions', 'compartment_memberships', 'export_references')",
    );
    expect(rows.map((r) => r.reltuples)).toEqual([-1, -1, -1]);
  });

  it('exports a Group and the Patient level, at once, with exactly every resource of the population', async () => {
    capturing = true;
    const expected = everyonesData(population);
    expect((await exported(`/Group/${groupId}/$export`)).resources).toEqual(expected);
    expect((await exported('/Patient/$export')).resources).toEqual(expected);
    const patients = population.filter((r) => r.resourceType === 'Patient').slice(0, 3);
    const listed = await exported('/Patient/$export', {
      method: 'POST',
      headers: { ...kickoffHeaders, 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: patients.map((p) => ({ name: 'patient', valueReference: { reference: `Patient/${p.id}` } })) }),
    });
    const theirs = new Set(patients.map((p) => `Patient/${p.id}`));
    const theirData = population.filter((r) => (r.resourceType === 'Patient' ? theirs.has(`Patient/${r.id}`) : !REFERENCED_TYPES.includes(r.resourceType) && [...theirs].some((p) => JSON.stringify(r).includes(`"${p}"`))));
    expect(listed.resources).toEqual(everyonesData([...theirData, ...population.filter((r) => REFERENCED_TYPES.includes(r.resourceType))]));
    // Blocks hold each patient's compartment (a resource in several compartments, like the Group, in each block).
    const blocks = (await exported(`/Group/${groupId}/$export?organizeOutputBy=Patient`)).resources;
    expect([...new Set(blocks)]).toEqual(expected.filter((key) => !REFERENCED_TYPES.includes(key.split('/')[0])));
  }, 300_000); // four exports; one that stalls fails with what its workflow waits on

  it('exports changes and deletions since an instant, and associated Provenance, on the same fresh store', async () => {
    const since = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const [deleted, changed] = population.filter((r) => r.resourceType === 'Observation');
    await stack.store.delete('Observation', deleted.id!);
    await stack.store.write([
      { op: 'put', resource: { ...changed, status: 'amended' } as FhirResourceJson },
      { op: 'put', resource: { resourceType: 'Provenance', id: 'prov-fresh', target: [{ reference: `Observation/${changed.id}` }], recorded: since } as FhirResourceJson },
    ]);
    const sinceThen = await exported(`/Group/${groupId}/$export?_since=${encodeURIComponent(since)}`);
    expect(sinceThen.resources).toEqual([`Observation/${changed.id}`, 'Provenance/prov-fresh']);
    expect(await downloadDeleted(sinceThen.manifest)).toEqual([`Observation/${deleted.id}`]);
    const withProvenance = await exported('/$export?_type=Observation&includeAssociatedData=RelevantProvenanceResources');
    expect(withProvenance.resources.filter((k) => k.startsWith('Provenance/'))).toEqual(['Provenance/prov-fresh']);
  });

  it('ran every statement with a plan that reaches rows by key, never rescanning per row', async () => {
    capturing = false;
    const store = /\b(resource_versions|compartment_memberships|export_references|provenance_targets|resource_references|group_memberships)\b/;
    const explained = new Set<string>();
    const found: string[] = [];
    let rangeReads = 0;
    const client = await pool.connect();
    const { rows: indexRows } = await client.query<{ name: string; columns: string[] }>(
      `SELECT i.relname AS name, array_agg(a.attname::text ORDER BY k.n) AS columns
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
         CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
        WHERE x.indrelid::regclass::text = ANY($1) GROUP BY i.relname`,
      [[...STORE_TABLES]],
    );
    const indexes: IndexColumns = new Map(indexRows.map((r) => [r.name, r.columns]));
    try {
      for (const { text, values, settings } of statements) {
        const statement = text.replace(/^\s*COPY \(([\s\S]*)\) TO STDOUT[\s\S]*$/, '$1').trim();
        if (!/^(SELECT|WITH|INSERT)/i.test(statement) || !store.test(statement) || explained.has(statement)) continue;
        explained.add(statement);
        // Planned as it ran: under its transaction's settings.
        await client.query('BEGIN');
        for (const setting of settings) await client.query(setting);
        const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${statement}`, values);
        await client.query('ROLLBACK');
        const plan = rows[0]['QUERY PLAN'][0].Plan;
        const shown = statement.replace(/\s+/g, ' ').slice(0, 200);
        // A read in (last_updated, id) order (planning, partition streams) states the snapshot
        // index's predicate and reads by that index, which keeps the order: nothing is sorted.
        if (statement.includes(SNAPSHOT_INDEX_PREDICATE) && /ORDER BY resource_versions\.last_updated, resource_versions\.id/.test(statement)) {
          rangeReads++;
          if (!indexesUsed(plan).has('resource_versions_snapshot')) found.push(`an ordered range read without its index\n  in: ${shown}`);
        }
        for (const scan of rescansPerRow(plan, indexes)) found.push(`${scan}\n  in: ${shown}`);
      }
    } finally {
      client.release();
    }
    // Partition streams, planning, recordings, blocks, deletions, referenced resources and Provenance all ran.
    expect(explained.size).toBeGreaterThan(20);
    expect(rangeReads).toBeGreaterThan(5);
    expect(found).toEqual([]);
  });
});
