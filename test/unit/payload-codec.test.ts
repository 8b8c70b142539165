import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { EncryptionCodec, ENCRYPTED_ENCODING, PayloadKeyError } from '../../src/temporal/payload-codec';

const key = (id: string) => ({ id, key: randomBytes(32) });
const patient = defaultPayloadConverter.toPayload({ resourceType: 'Patient', id: 'patient-123', name: [{ family: 'Quigley' }] })!;

describe('EncryptionCodec', () => {
  it('encrypts a payload so that none of its text is left, and decrypts it to the same payload', async () => {
    const codec = new EncryptionCodec([key('k1')]);
    const [encrypted] = await codec.encode([patient]);
    expect(Buffer.from(encrypted.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(encrypted.metadata!['encryption-key-id']!).toString()).toBe('k1');
    expect(Buffer.from(encrypted.data!).toString('latin1')).not.toMatch(/patient-123|Quigley|json/);
    const [decrypted] = await codec.decode([encrypted]);
    expect(defaultPayloadConverter.fromPayload(decrypted)).toEqual({ resourceType: 'Patient', id: 'patient-123', name: [{ family: 'Quigley' }] });
  });

  it('uses a fresh nonce for every payload', async () => {
    const codec = new EncryptionCodec([key('k1')]);
    const [a, b] = await codec.encode([patient, patient]);
    expect(Buffer.from(a.data!).equals(Buffer.from(b.data!))).toBe(false);
  });

  it('rotates: new payloads use the first key, payloads of an older key still decrypt', async () => {
    const old = key('2026-01');
    const [before] = await new EncryptionCodec([old]).encode([patient]);
    const rotated = new EncryptionCodec([key('2026-12'), old]);
    const [after] = await rotated.encode([patient]);
    expect(Buffer.from(after.metadata!['encryption-key-id']!).toString()).toBe('2026-12');
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([before]))[0])).toEqual(defaultPayloadConverter.fromPayload(patient));
  });

  it('refuses a payload of a key it does not hold, naming the key id', async () => {
    const [encrypted] = await new EncryptionCodec([key('gone')]).encode([patient]);
    await expect(new EncryptionCodec([key('other')]).decode([encrypted])).rejects.toThrow(PayloadKeyError);
    await expect(new EncryptionCodec([key('other')]).decode([encrypted])).rejects.toThrow('"gone"');
  });

  it('refuses a tampered payload, and one whose key id was swapped', async () => {
    const a = key('a');
    const b = { id: 'b', key: a.key };
    const codec = new EncryptionCodec([a, b]);
    const [encrypted] = await codec.encode([patient]);
    const flipped = Buffer.from(encrypted.data!);
    flipped[20] ^= 1;
    await expect(codec.decode([{ ...encrypted, data: flipped }])).rejects.toThrow();
    await expect(codec.decode([{ ...encrypted, metadata: { ...encrypted.metadata, 'encryption-key-id': Buffer.from('b') } }])).rejects.toThrow();
  });

  it('passes payloads written before encryption through unchanged', async () => {
    const [decoded] = await new EncryptionCodec([key('k1')]).decode([patient]);
    expect(decoded).toBe(patient);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => new EncryptionCodec([{ id: 'short', key: randomBytes(16) }])).toThrow('32');
    expect(() => new EncryptionCodec([])).toThrow();
  });
});
