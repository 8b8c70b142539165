/**
 * `organizeOutputBy=Patient`: the selected patients' compartments read patient by patient, each
 * patient's resources together (the Patient first, then by type, last update and id), in the
 * same snapshot as every export. Partitions are ranges of patient ids.
 */
import type { Pool } from 'pg';
import { COPY_FORMAT, streamCopyRows } from './snapshot-stream';
import { changedOrJoinedSql, selectedCompartmentRows, versionByKey } from './snapshot-scope';
import type { CompartmentFilter, ExportWindow } from '../contracts/export-window';
import { instant, literal } from './sql';

/** The blocks of an export's window, which has a compartment: these types of the selected patients. */
export interface BlockScope extends ExportWindow {
  compartment: CompartmentFilter;
  types: string[];
  /** Pushable `_typeFilter` SQL per type. */
  filterSql: Record<string, string | undefined>;
}

/** A position in block order: patient, type key ('0' for the Patient itself), last update, id. */
export interface BlockCursor {
  patientId: string;
  typeKey: string;
  lastUpdated: string;
  id: string;
}

export interface BlockRange {
  /** Patients after this id... */
  afterPatient?: string;
  /** ...up to and including this one. */
  upToPatient?: string;
  /** Resume after this row (a retry). */
  after?: BlockCursor;
}

// '0' sorts before every type name in the C collation, so each block starts with its Patient.
// (Not '': CSV output quotes an empty string, which would not read back as one.)
const TYPE_KEY = `(CASE WHEN v.resource_type = 'Patient' THEN '0' ELSE v.resource_type END) COLLATE "C"`;

function blockWhere(scope: BlockScope, range: BlockRange): string {
  const t = instant(scope.transactionTime);
  const typeConditions = scope.types.map((type) => {
    const filter = scope.filterSql[type];
    return `(v.resource_type = ${literal(type)}${filter ? ` AND ${filter.replace(/resource_versions\./g, 'v.')}` : ''})`;
  });
  const conditions = [
    `c.tenant = ${literal(scope.tenant)}`,
    `(${typeConditions.join(' OR ') || 'false'})`,
    `v.last_updated <= ${t}`,
    `(v.superseded_at IS NULL OR v.superseded_at > ${t})`,
    'NOT v.deleted',
  ];
  if (scope.since && scope.compartment.groupId) {
    // As in every Group export: a patient who joined after _since gets all of their data.
    conditions.push(changedOrJoinedSql(scope.tenant, scope.compartment.groupId, scope.transactionTime, scope.since, 'v.last_updated', (joinedIds) => `c.patient_id = ANY(${joinedIds})`));
  } else if (scope.since) {
    conditions.push(`v.last_updated > ${instant(scope.since)}`);
  }
  if (scope.until) conditions.push(`v.last_updated <= ${instant(scope.until)}`);
  conditions.push(...patientRange(range));
  if (range.after) {
    const a = range.after;
    conditions.push(`(c.patient_id, ${TYPE_KEY}, v.last_updated, v.id) > (${literal(a.patientId)}, ${literal(a.typeKey)}, ${instant(a.lastUpdated)}, ${literal(a.id)})`);
  }
  return conditions.join('\n  AND ');
}

/** Conditions on `c.patient_id` for a range of patients. */
function patientRange(range: BlockRange): string[] {
  const conditions: string[] = [];
  if (range.afterPatient !== undefined) conditions.push(`c.patient_id > ${literal(range.afterPatient)}`);
  if (range.upToPatient !== undefined) conditions.push(`c.patient_id <= ${literal(range.upToPatient)}`);
  return conditions;
}

/**
 * The range's compartment rows, patient by patient, each with its version by key (plans that
 * need no statistics). The range is applied inside each patient's probe, so a partition reads only its patients.
 */
function blockFrom(scope: BlockScope, range: BlockRange): string {
  const condition = [`c.resource_type IN (${scope.types.map(literal).join(', ') || 'NULL'})`, ...patientRange(range)].join(' AND ');
  return `${selectedCompartmentRows(scope.tenant, scope.compartment, scope.transactionTime, condition)}
  ${versionByKey('v', { tenant: 'c.tenant', type: 'c.resource_type', id: 'c.resource_id', version: 'c.version_id' })}`;
}

/** How many resources the blocks hold, and patient ids that cut them into partitions of about `partitionSize`. */
export async function planPatientBlocks(pool: Pool, scope: BlockScope, partitionSize: number): Promise<{ count: number; bounds: string[] }> {
  const { rows } = await pool.query<{ patient_id: string; n: string }>(
    `SELECT c.patient_id, count(*) AS n FROM ${blockFrom(scope, {})} WHERE ${blockWhere(scope, {})} GROUP BY c.patient_id ORDER BY c.patient_id`,
  );
  let count = 0;
  let sincePrevious = 0;
  const bounds: string[] = [];
  for (const [i, row] of rows.entries()) {
    count += Number(row.n);
    sincePrevious += Number(row.n);
    if (sincePrevious >= partitionSize && i < rows.length - 1) {
      bounds.push(row.patient_id);
      sincePrevious = 0;
    }
  }
  return { count, bounds };
}

export interface BlockRow {
  body: Buffer;
  type: string;
  cursor: BlockCursor;
}

/** Streams the rows of a range of patients in block order. */
export async function* streamPatientBlocks(pool: Pool, scope: BlockScope, range: BlockRange): AsyncGenerator<BlockRow[]> {
  const sql = `COPY (SELECT v.body, c.patient_id, ${TYPE_KEY} AS type_key, v.resource_type, v.last_updated::text, v.id FROM ${blockFrom(scope, range)}
     WHERE ${blockWhere(scope, range)}
     ORDER BY c.patient_id, type_key, v.last_updated, v.id) TO STDOUT ${COPY_FORMAT}`;
  for await (const rows of streamCopyRows(pool, sql, 5)) {
    yield rows.map(({ body, fields: [patientId, typeKey, type, lastUpdated, id] }) => ({ body, type, cursor: { patientId, typeKey, lastUpdated, id } }));
  }
}
