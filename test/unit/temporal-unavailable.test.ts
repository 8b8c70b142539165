import { ServiceError } from '@temporalio/client';
import { isTemporalUnavailable } from '../../src/temporal/unavailable';

/** gRPC status codes (grpc/status.proto). */
const status = { CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 };

/** A gRPC error as @grpc/grpc-js raises it (what the Temporal client wraps in a ServiceError). */
const grpcError = (code: number) => Object.assign(new Error(`code ${code}`), { code, details: '', metadata: {} });

describe('which Temporal failures are the cluster\'s trouble (503, retry later) and which are not', () => {
  it.each([status.CANCELLED, status.UNKNOWN, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED, status.ABORTED, status.INTERNAL, status.UNAVAILABLE])('code %i, bare or wrapped in a ServiceError, is transient', (code) => {
    expect(isTemporalUnavailable(grpcError(code))).toBe(true);
    expect(isTemporalUnavailable(new ServiceError('Failed to describe schedule', { cause: grpcError(code) }))).toBe(true);
  });

  it.each([status.INVALID_ARGUMENT, status.NOT_FOUND, status.ALREADY_EXISTS, status.PERMISSION_DENIED, status.FAILED_PRECONDITION, status.UNAUTHENTICATED])('code %i is not', (code) => {
    expect(isTemporalUnavailable(new ServiceError('Failed', { cause: grpcError(code) }))).toBe(false);
  });

  it('is not for errors that are not gRPC errors', () => {
    expect(isTemporalUnavailable(new Error('a bug'))).toBe(false);
  });
});
