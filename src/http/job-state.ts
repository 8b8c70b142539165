/**
 * What a job (an export or an async request: one workflow each) looks like to a client polling
 * it: running (with its status query's answer, if a worker gave one in time), failed, or gone
 * (unknown, another workflow type, cancelled, expired: a 404). Only its owner (or an
 * admin) may see it: the route checks `owner` against the caller, and answers 404 otherwise.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, WorkflowNotFoundError, type QueryDefinition } from '@temporalio/client';
import type { TemporalGateway } from '../temporal/gateway';
import { OperationOutcomeError } from '../fhir/outcome-error';
import { BAD_RESOURCE_FAILURE, VIEW_EVALUATION_FAILURE } from '../contracts/failures';

export type JobState<S> = ({ kind: 'running'; status?: S } | { kind: 'failed'; reason: string; failureType?: string }) & {
  /** The client that started the job, and the tenant it belongs to (from the workflow's memo). */
  owner?: string;
  tenant?: string;
  /** Where a scheduled export's files live under the tenant (from the memo). */
  outputPrefix?: string;
};

export const JOB_ID = /^[A-Za-z0-9_-]{22}$/;
/** A new job id: 16 random bytes, base64url (22 characters, as JOB_ID). */
export const newJobId = () => randomBytes(16).toString('base64url');
/** One answer for unknown, cancelled, expired and other clients' jobs, so none reveals that it exists. */
export const NO_SUCH_JOB = 'No such job';
const QUERY_DEADLINE_MS = 3000;

/**
 * Statuses of jobs whose work is done (phase `completed`), by workflow run: they never change
 * again, so polls of a finished export (clients re-reading the manifest) skip the query, which
 * needs a worker. The description is still read every time: it is what says the job was
 * cancelled or expired, whichever API process was told.
 */
const finished = new Map<string, unknown>();
const FINISHED_KEPT = 1000;

function remember(runId: string, status: unknown): void {
  if ((status as { phase?: unknown } | undefined)?.phase !== 'completed') return;
  finished.delete(runId);
  finished.set(runId, status);
  if (finished.size > FINISHED_KEPT) finished.delete(finished.keys().next().value!);
}

export async function jobState<S>(temporal: TemporalGateway, id: string, workflowType: string, query: QueryDefinition<S>): Promise<JobState<S>> {
  if (!JOB_ID.test(id)) throw OperationOutcomeError.notFound(NO_SUCH_JOB);
  let description;
  try {
    description = await temporal.describe(id);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw OperationOutcomeError.notFound(NO_SUCH_JOB);
    throw err;
  }
  if (description.type !== workflowType) throw OperationOutcomeError.notFound(NO_SUCH_JOB);
  const memo = (key: string) => (typeof description.memo?.[key] === 'string' ? (description.memo[key] as string) : undefined);
  const [owner, tenant, outputPrefix] = [memo('owner'), memo('tenant'), memo('outputPrefix')];
  switch (description.status.name) {
    case 'RUNNING':
      // DELETE is final at once, even before a worker has carried out the cancellation.
      if (description.raw.workflowExtendedInfo?.cancelRequested) throw OperationOutcomeError.notFound(NO_SUCH_JOB);
      break;
    case 'CANCELLED':
    case 'TERMINATED':
    case 'COMPLETED': // expired: its results were deleted
      throw OperationOutcomeError.notFound(NO_SUCH_JOB);
    default: {
      const cause = await failureCause(temporal, id, description.runId);
      return { kind: 'failed', owner, tenant, outputPrefix, reason: cause?.message ?? `the job ${description.status.name.toLowerCase()}`, failureType: cause?.type };
    }
  }
  const known = finished.get(description.runId) as S | undefined;
  if (known !== undefined) return { kind: 'running', owner, tenant, outputPrefix, status: known };
  try {
    const status = await temporal.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => temporal.client.workflow.getHandle(id, description.runId).query(query));
    remember(description.runId, status);
    return { kind: 'running', owner, tenant, outputPrefix, status };
  } catch {
    return { kind: 'running', owner, tenant, outputPrefix }; // no worker answered: still running as far as anyone can tell
  }
}

/** The failure that ended a job's workflow, innermost first (the activity's own error, not its wrappers). */
async function failureCause(temporal: TemporalGateway, id: string, runId: string): Promise<{ message: string; type?: string } | undefined> {
  const err = await temporal.client
    .withDeadline(Date.now() + QUERY_DEADLINE_MS, () => temporal.client.workflow.getHandle(id, runId).result())
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  let cause = err;
  while (cause instanceof Error && !(cause instanceof ApplicationFailure) && cause.cause) cause = cause.cause;
  if (!(cause instanceof Error)) return undefined;
  return { message: cause.message, type: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined };
}

/** Failures that are the data's or the request's: the client's 422, not the service's 500. */
const CLIENT_FAILURES: ReadonlySet<string> = new Set([VIEW_EVALUATION_FAILURE, BAD_RESOURCE_FAILURE]);

/** The answer to a failed job: an OperationOutcome that names the cause. */
export function failedJobError(state: { reason: string; failureType?: string }, what: 'export' | 'request'): Error {
  const diagnostics = `The ${what} failed: ${state.reason}`;
  return state.failureType && CLIENT_FAILURES.has(state.failureType) ? new OperationOutcomeError('processing', diagnostics) : new OperationOutcomeError('exception', diagnostics);
}
