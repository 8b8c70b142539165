/**
 * The payload key of recorded replay fixtures. Fixtures are recorded on a throwaway stack and
 * replayed in every test run, so their key is fixed and public: it protects nothing, it only
 * lets replay decode what the recording encrypted, exactly as a production worker would.
 */
import { createHash } from 'node:crypto';
import type { PayloadKey } from '../../src/temporal/payload-codec';

export const REPLAY_FIXTURE_KEY: PayloadKey = { id: 'replay-fixtures', key: createHash('sha256').update('bulkflow replay fixtures').digest() };
