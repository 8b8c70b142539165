/**
 * The keys that encrypt Temporal payloads: TEMPORAL_PAYLOAD_KEYS when set (production: from a
 * secret manager, rotated by putting a new key first). Unset, one key is generated on first use
 * and kept in PostgreSQL, so the embedded default and every process on the same store encrypt
 * with no setup; Temporal's own database and Web UI never see it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { PayloadKey } from './payload-codec';

export async function loadPayloadKeys(pool: Pool, configured: readonly PayloadKey[] | undefined): Promise<PayloadKey[]> {
  if (configured && configured.length > 0) return [...configured];
  const { rows } = await pool.query<{ key_id: string; key: Buffer }>('SELECT key_id, key FROM payload_keys ORDER BY created_at DESC, key_id');
  if (rows.length > 0) return rows.map((row) => ({ id: row.key_id, key: row.key }));
  // Two processes starting at once: the first insert wins and both read it back.
  await pool.query('INSERT INTO payload_keys (key_id, key) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM payload_keys)', [`generated-${randomUUID()}`, randomBytes(32)]);
  return loadPayloadKeys(pool, undefined);
}
