/**
 * Health data never reaches Temporal in clear: every payload (workflow and activity inputs and
 * results, heartbeats, query answers, memos, the Web UI's summaries, failure messages) is
 * encrypted with AES-256-GCM before it leaves the process, Temporal's guidance for sensitive
 * data. Each payload names its key id, so keys rotate: new payloads use the first key, and any
 * listed key still decrypts. Payloads written before encryption (no encrypted encoding) pass
 * through as they are, so exports started by an older release still complete.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface PayloadKey {
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

const text = (value: Uint8Array | undefined | null) => (value ? Buffer.from(value).toString('utf8') : undefined);

export class PayloadKeyError extends Error {}

export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;

  /** `keys[0]` encrypts; every key decrypts what names it. */
  constructor(private readonly keys: readonly PayloadKey[]) {
    if (keys.length === 0) throw new PayloadKeyError('no payload key');
    for (const { id, key } of keys) if (key.length !== 32) throw new PayloadKeyError(`payload key ${id} is ${key.length} bytes, not 32`);
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { id, key } = this.keys[0]!;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(id)); // the key id cannot be swapped for another's
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID]: Buffer.from(id) }, data };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload; // written before encryption
      const id = text(payload.metadata?.[KEY_ID]) ?? '';
      const key = this.byId.get(id);
      if (!key) throw new PayloadKeyError(`payload encrypted with key "${id}", which is not among the configured payload keys`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(id));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}
