/**
 * Which activity errors no retry can mend: they become non-retryable ApplicationFailures that
 * name the cause, and the export fails at once with it (contracts/failures.ts). Everything else
 * (a dropped connection, a timeout, a 5xx) is retried, up to the workflow's bound on attempts.
 */
import { ApplicationFailure } from '@temporalio/common';
import { BAD_RESOURCE_FAILURE, OUTPUT_UNAVAILABLE_FAILURE } from '../src/contracts/failures';
import { UnreadableResourceError } from '../src/store/stored-body';
import { OutputUnavailableError } from '../src/output/output-store';
import { ProviderRefusal } from '../src/bulk-submit/provider-requests';

/** Node's file-system codes that stay true on retry: no permission, a read-only file system. */
const LASTING_FS_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

export function permanentFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof UnreadableResourceError) return ApplicationFailure.nonRetryable(err.message, BAD_RESOURCE_FAILURE);
  if (err instanceof ProviderRefusal) return ApplicationFailure.nonRetryable(err.message, 'ProviderRefusal');
  if (err instanceof OutputUnavailableError) return ApplicationFailure.nonRetryable(err.message, OUTPUT_UNAVAILABLE_FAILURE);
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  // GCS: the worker's account may not write to the bucket.
  if (code === 403) return ApplicationFailure.nonRetryable(`The output bucket refuses this worker (403: ${String(message)})`, OUTPUT_UNAVAILABLE_FAILURE);
  if (typeof code === 'string' && LASTING_FS_CODES.has(code)) {
    return ApplicationFailure.nonRetryable(`The output directory cannot be written (${code})`, OUTPUT_UNAVAILABLE_FAILURE);
  }
  return err;
}

/** The same activities, each throwing its lasting errors as non-retryable failures. */
export function withPermanentFailures<A extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: A): A {
  return Object.fromEntries(
    Object.entries(activities).map(([name, activity]) => [
      name,
      async (...args: never[]) => {
        try {
          return await activity(...args);
        } catch (err) {
          throw permanentFailure(err);
        }
      },
    ]),
  ) as A;
}
