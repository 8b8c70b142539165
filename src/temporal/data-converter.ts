/** The data converter of every bulkflow client and worker: encrypted payloads, encoded failure texts. */
import type { DataConverter } from '@temporalio/common';
import { EncryptionCodec, type PayloadKey } from './payload-codec';

export const failureConverterPath = require.resolve('./failure-converter');

export function encryptingDataConverter(keys: readonly PayloadKey[]): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(keys)], failureConverterPath };
}
