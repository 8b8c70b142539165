/**
 * Forward-only schema migrations, applied in order and recorded in schema_migrations. Never
 * edit a migration that has shipped: add the next number.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'resource versions, patient compartments, group memberships',
    sql: `
-- Every version of every resource. A version is current from last_updated until superseded_at
-- (NULL while current), so an export reads exactly the versions current at its transactionTime.
CREATE TABLE resource_versions (
  tenant         text        NOT NULL,
  resource_type  text        NOT NULL,
  id             text        NOT NULL,
  version_id     integer     NOT NULL,
  last_updated   timestamptz NOT NULL,
  superseded_at  timestamptz,
  deleted        boolean     NOT NULL,
  content_hash   bytea,      -- sha-256 of the resource without meta.versionId/lastUpdated; NULL when deleted
  body           text,       -- the resource as exported (meta set by the store); NULL when deleted
  PRIMARY KEY (tenant, resource_type, id, version_id)
);
CREATE UNIQUE INDEX resource_versions_current
  ON resource_versions (tenant, resource_type, id) WHERE superseded_at IS NULL;
-- Keyset paging of one type in (last_updated, id) order; _since is the lower bound of the same range.
CREATE INDEX resource_versions_by_time
  ON resource_versions (tenant, resource_type, last_updated, id);

-- The patients whose compartment a resource version belongs to (R4 Patient CompartmentDefinition).
CREATE TABLE compartment_memberships (
  tenant         text    NOT NULL,
  patient_id     text    NOT NULL,
  resource_type  text    NOT NULL,
  resource_id    text    NOT NULL,
  version_id     integer NOT NULL,
  PRIMARY KEY (tenant, patient_id, resource_type, resource_id, version_id)
);
CREATE INDEX compartment_memberships_by_resource
  ON compartment_memberships (tenant, resource_type, resource_id, version_id);

-- Group.member of each Group version, queryable without parsing Groups.
CREATE TABLE group_memberships (
  tenant        text        NOT NULL,
  group_id      text        NOT NULL,
  version_id    integer     NOT NULL,
  member_type   text        NOT NULL,
  member_id     text        NOT NULL,
  period_start  timestamptz,
  period_end    timestamptz,
  inactive      boolean     NOT NULL DEFAULT false
);
CREATE INDEX group_memberships_by_group ON group_memberships (tenant, group_id, version_id);
`,
  },
  {
    version: 2,
    name: 'covering snapshot index, so planning an export reads only the index',
    sql: `
-- The snapshot predicate needs superseded_at and deleted; carrying them in the (last_updated, id)
-- index lets counting and partition planning run as index-only scans instead of visiting the
-- heap once per row (which dominated planning for types spread across the table).
CREATE INDEX resource_versions_snapshot
  ON resource_versions (tenant, resource_type, last_updated, id) INCLUDE (superseded_at, deleted);
DROP INDEX resource_versions_by_time;
`,
  },
  {
    version: 3,
    name: 'lz4 compression for large bodies where the server supports it',
    sql: `
-- Bodies over ~2 kB are compressed; lz4 writes and reads them several times faster than pglz.
DO $$
BEGIN
  ALTER TABLE resource_versions ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'lz4 is not available (%); bodies keep the default compression', SQLERRM;
END $$;
`,
  },
  {
    version: 4,
    name: 'references from compartment resources to Practitioner, Organization, Location, Medication',
    sql: `
-- Patient- and Group-level exports add the non-compartment resources that the selected
-- compartments reference. This index of those references (from versions in some compartment)
-- lets an export find them with joins instead of reading bodies.
CREATE TABLE resource_references (
  tenant          text    NOT NULL,
  source_type     text    NOT NULL,
  source_id       text    NOT NULL,
  source_version  integer NOT NULL,
  target_type     text    NOT NULL,
  target_id       text    NOT NULL,
  PRIMARY KEY (tenant, source_type, source_id, source_version, target_type, target_id)
);
INSERT INTO resource_references
SELECT DISTINCT v.tenant, v.resource_type, v.id, v.version_id, m[1], m[2]
  FROM resource_versions v
 CROSS JOIN LATERAL regexp_matches(v.body, '"reference":"(?:[^"]*/)?(Practitioner|Organization|Location|Medication)/([A-Za-z0-9.-]{1,64})"', 'g') m
 WHERE v.body IS NOT NULL
   AND EXISTS (SELECT 1 FROM compartment_memberships c
                WHERE c.tenant = v.tenant AND c.resource_type = v.resource_type AND c.resource_id = v.id AND c.version_id = v.version_id);

-- The referenced resources one export selected at its transactionTime (computed once, when it
-- is planned; removed with its files).
CREATE TABLE export_references (
  export_id      text NOT NULL,
  resource_type  text NOT NULL,
  id             text NOT NULL,
  PRIMARY KEY (export_id, resource_type, id)
);
`,
  },
  {
    version: 5,
    name: 'Provenance targets',
    sql: `
-- Provenance.target of each Provenance version, so exports can add the Provenance of the
-- resources they export (includeAssociatedData) without parsing every Provenance.
CREATE TABLE provenance_targets (
  tenant         text        NOT NULL,
  provenance_id  text        NOT NULL,
  version_id     integer     NOT NULL,
  recorded       timestamptz,
  target_type    text        NOT NULL,
  target_id      text        NOT NULL,
  PRIMARY KEY (tenant, target_type, target_id, provenance_id, version_id)
);
INSERT INTO provenance_targets
SELECT DISTINCT v.tenant, v.id, v.version_id,
       CASE WHEN v.body::jsonb->>'recorded' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' THEN (v.body::jsonb->>'recorded')::timestamptz END,
       m[1], m[2]
  FROM resource_versions v
 CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(v.body::jsonb->'target') = 'array' THEN v.body::jsonb->'target' ELSE '[]'::jsonb END) target
 CROSS JOIN LATERAL regexp_match(target->>'reference', '([A-Z][A-Za-z]+)/([A-Za-z0-9.-]{1,64})(?:/_history/[^/]+)?$') m
 WHERE v.resource_type = 'Provenance' AND v.body IS NOT NULL AND m IS NOT NULL;
`,
  },
  {
    version: 6,
    name: 'SMART Backend Services: registered clients, used assertion ids, the token signing key',
    sql: `
CREATE TABLE auth_clients (
  client_id   text        PRIMARY KEY,
  jwks        jsonb,       -- inline JWKS, or
  jwks_url    text,        -- where to fetch it
  scopes      text        NOT NULL,  -- the scopes the client may be granted, space-separated
  tenant      text        NOT NULL DEFAULT 'default',  -- its tokens are valid for this tenant only
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((jwks IS NULL) <> (jwks_url IS NULL))
);
-- Client assertion ids seen until they expire: a replayed assertion is refused.
CREATE TABLE auth_used_jtis (
  client_id   text        NOT NULL,
  jti         text        NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (client_id, jti)
);
-- The built-in token endpoint's signing key, shared by every API process on this database.
CREATE TABLE auth_signing_keys (
  kid          text        PRIMARY KEY,
  private_jwk  jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    version: 7,
    name: 'scheduled exports: the incremental watermark, runs and the latest manifest',
    sql: `
-- One row per schedule, kept when the Temporal Schedule is deleted, so a schedule recreated
-- under the same id goes on from its watermark: no gap, no overlap.
CREATE TABLE export_schedules (
  tenant               text        NOT NULL,
  schedule_id          text        NOT NULL,
  watermark            timestamptz,  -- transactionTime of the last completed run (the next run's _since)
  watermark_export_id  text,
  latest_manifest      jsonb,        -- the newest completed run's manifest: the "latest" pointer
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, schedule_id)
);
CREATE TABLE schedule_runs (
  tenant            text        NOT NULL,
  schedule_id       text        NOT NULL,
  run_id            text        NOT NULL,  -- the scheduled run's workflow run: one export each
  workflow_id       text        NOT NULL,  -- (a trigger may reuse a closed run's workflow id)
  export_id         text        NOT NULL,
  watermark         timestamptz,           -- the schedule's watermark when the run began (NULL: none yet)
  since             timestamptz,           -- the run's _since: the watermark, or the schedule's start
  transaction_time  timestamptz,
  state             text        NOT NULL,  -- running, completed, superseded, failed, cancelled
  reason            text,
  manifest          jsonb,
  started_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  PRIMARY KEY (tenant, run_id),
  UNIQUE (export_id)
);
CREATE INDEX schedule_runs_by_schedule ON schedule_runs (tenant, schedule_id, started_at DESC);
`,
  },
  {
    version: 8,
    name: 'identifier columns compare bytewise (COLLATE "C")',
    sql: `
-- Ids, types and tenants are compared in every index lookup, insert and keyset page. Under the
-- database's default collation (e.g. C.UTF-8) each comparison went through strcoll, which took
-- about a third of PostgreSQL's time in an import; bytewise comparison gives the same answers
-- for equality and an order that is just as stable. Indexes on these columns are rebuilt.
-- Apply it with no export running: a partition resumed across it would see ids that share a
-- millisecond in another order.
ALTER TABLE resource_versions
  ALTER COLUMN tenant TYPE text COLLATE "C",
  ALTER COLUMN resource_type TYPE text COLLATE "C",
  ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE compartment_memberships
  ALTER COLUMN tenant TYPE text COLLATE "C",
  ALTER COLUMN patient_id TYPE text COLLATE "C",
  ALTER COLUMN resource_type TYPE text COLLATE "C",
  ALTER COLUMN resource_id TYPE text COLLATE "C";
ALTER TABLE resource_references
  ALTER COLUMN tenant TYPE text COLLATE "C",
  ALTER COLUMN source_type TYPE text COLLATE "C",
  ALTER COLUMN source_id TYPE text COLLATE "C",
  ALTER COLUMN target_type TYPE text COLLATE "C",
  ALTER COLUMN target_id TYPE text COLLATE "C";
ALTER TABLE group_memberships
  ALTER COLUMN tenant TYPE text COLLATE "C",
  ALTER COLUMN group_id TYPE text COLLATE "C",
  ALTER COLUMN member_type TYPE text COLLATE "C",
  ALTER COLUMN member_id TYPE text COLLATE "C";
ALTER TABLE provenance_targets
  ALTER COLUMN tenant TYPE text COLLATE "C",
  ALTER COLUMN provenance_id TYPE text COLLATE "C",
  ALTER COLUMN target_type TYPE text COLLATE "C",
  ALTER COLUMN target_id TYPE text COLLATE "C";
ALTER TABLE export_references
  ALTER COLUMN export_id TYPE text COLLATE "C",
  ALTER COLUMN resource_type TYPE text COLLATE "C",
  ALTER COLUMN id TYPE text COLLATE "C";
`,
  },
  {
    version: 9,
    name: 'recorded selections name exact versions, in export order',
    sql: `
-- An export's recorded resources (a Group's or a patient list's compartments, referenced and
-- associated resources) carry the version current at its transactionTime and its last_updated,
-- so a partition reads its range of them in (last_updated, id) order from this index and fetches
-- each version by key: matching recorded ids against a type's versions made each partition of
-- a 4,167-patient Group read the whole selection (7 s per 50,000 resources).
ALTER TABLE export_references
  ADD COLUMN at_version integer,
  ADD COLUMN at_last_updated timestamptz;
-- Selections recorded before this migration get the current version (best effort: apply it
-- with no Patient or Group export running).
UPDATE export_references e SET at_version = v.version_id, at_last_updated = v.last_updated
  FROM resource_versions v
 WHERE v.resource_type = e.resource_type AND v.id = e.id AND v.superseded_at IS NULL AND NOT v.deleted;
DELETE FROM export_references WHERE at_version IS NULL;
ALTER TABLE export_references
  ALTER COLUMN at_version SET NOT NULL,
  ALTER COLUMN at_last_updated SET NOT NULL;
-- One index, in export order: a (type, id) has one version per export, so it is as unique as
-- (export_id, resource_type, id) was, and each recorded row maintains one index, not two.
ALTER TABLE export_references DROP CONSTRAINT export_references_pkey;
ALTER TABLE export_references ADD PRIMARY KEY (export_id, resource_type, at_last_updated, id);
`,
  },
  {
    version: 10,
    name: 'each version carries the patients whose compartments it is in',
    sql: `
-- Patient and Group exports read a type's range and keep the versions in a selected patient's
-- compartment. Asking compartment_memberships once per version (an index probe each) tripled the
-- time of reading Observations (4.9 s against 1.6 s for 663,000); the version's own list of
-- patients is on the row already read (1.7 s; 2.0 s checked against a 4,167-patient Group).
-- NULL: in no compartment. compartment_memberships stays: it finds a patient's resources.
ALTER TABLE resource_versions ADD COLUMN compartment_patients text[] COLLATE "C";
UPDATE resource_versions v SET compartment_patients = c.patients
  FROM (SELECT tenant, resource_type, resource_id, version_id, array_agg(patient_id ORDER BY patient_id) AS patients
          FROM compartment_memberships GROUP BY tenant, resource_type, resource_id, version_id) c
 WHERE v.tenant = c.tenant AND v.resource_type = c.resource_type AND v.id = c.resource_id AND v.version_id = c.version_id;
`,
  },
  {
    version: 11,
    name: 'references by target',
    sql: `
-- A Patient or Group export adds the Practitioners, Organizations, Locations and Medications its
-- compartments reference: a few hundred targets of a million references. From each distinct
-- target to one reference whose source is current and selected is a probe or two; checking every
-- reference's source took 2.8-4.4 s on a million resources.
CREATE INDEX resource_references_by_target ON resource_references (tenant, target_type, target_id);
`,
  },
  {
    version: 12,
    name: 'export admissions',
    sql: `
-- The per-tenant cap counts running exports in Temporal's visibility, which lists a new workflow
-- only a moment after it starts: 200 concurrent kick-offs under a cap of 10 started 107. Kick-offs
-- of one tenant now take turns (an advisory lock) and record what they admitted here, so the next
-- one counts exports visibility does not list yet. Rows are pruned after a few minutes.
CREATE TABLE export_admissions (
  tenant text COLLATE "C" NOT NULL,
  export_id text COLLATE "C" NOT NULL,
  admitted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, export_id)
);
`,
  },
  {
    version: 13,
    name: 'the snapshot index serves only the range reads that ask for it',
    sql: `
-- Without statistics (a store just written, before any ANALYZE) every equality estimate is one
-- row, and PostgreSQL took the (tenant, type, last_updated, id) index for probes by
-- (tenant, type, id, version): it has one index condition fewer to evaluate. Such a probe walks
-- every version of the type, once per row: a 40-patient block export took 10 s instead of 30 ms.
-- As a partial index it is used only by queries that state its predicate (snapshotWhere's range
-- reads); probes by key are left with the primary key. No stored version is at -infinity.
CREATE INDEX resource_versions_snapshot_ranges
  ON resource_versions (tenant, resource_type, last_updated, id) INCLUDE (superseded_at, deleted)
  WHERE last_updated > '-infinity'::timestamptz;
DROP INDEX resource_versions_snapshot;
ALTER INDEX resource_versions_snapshot_ranges RENAME TO resource_versions_snapshot;
`,
  },
  {
    version: 14,
    name: 'payload keys',
    sql: `
-- The key that encrypts Temporal payloads when TEMPORAL_PAYLOAD_KEYS is not set: generated once,
-- shared by every process of this store (src/temporal/payload-keys.ts).
CREATE TABLE payload_keys (
  key_id text PRIMARY KEY,
  key bytea NOT NULL CHECK (octet_length(key) = 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    version: 15,
    name: 'patient lists kept once per export',
    sql: `
-- An export's \`patient\` list, kept once here instead of in every partition's workflow input (a
-- POST of 50,000 patients times a thousand partitions would pass Temporal's history limits).
-- Forgotten with the export's files.
CREATE TABLE export_patient_lists (
  tenant text COLLATE "C" NOT NULL,
  list_id text COLLATE "C" NOT NULL,
  patient_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (tenant, list_id, patient_id)
);
`,
  },
  {
    version: 16,
    name: 'submitted resources by manifest',
    sql: `
-- The resources each manifest of a $bulk-submit submission loaded (or kept), by the manifest's
-- index in the submission: what a replacing manifest no longer carries is deleted from the store.
-- Forgotten when the submission's status expires.
CREATE TABLE submission_resources (
  tenant text COLLATE "C" NOT NULL,
  job_id text COLLATE "C" NOT NULL,
  manifest integer NOT NULL,
  resource_type text COLLATE "C" NOT NULL,
  id text COLLATE "C" NOT NULL,
  PRIMARY KEY (tenant, job_id, manifest, resource_type, id)
);
`,
  },
  {
    version: 17,
    name: 'submitted resources without a unique key',
    sql: `
-- Every loaded batch records its keys before it commits: with a unique key that index cost about
-- a sixth of a large submission's load. A key recorded twice (a retried batch) is harmless: the
-- removal reads DISTINCT keys. The index serves the removal and the forgetting, by manifest.
ALTER TABLE submission_resources DROP CONSTRAINT submission_resources_pkey;
CREATE INDEX submission_resources_by_manifest ON submission_resources (job_id, manifest);
`,
  },
];
