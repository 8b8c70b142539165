import type { Pool } from 'pg';
import { readBundleRequest, runBatch, runTransaction } from '../src/fhir/bundle-processing';
import { operationOutcome } from '../src/fhir/operation-outcome';
import { OperationOutcomeError } from '../src/fhir/outcome-error';
import { asyncDirectory, asyncResponseKey, storedAsyncResponse } from '../src/output/file-keys';
import { readText, writeText, type OutputStore } from '../src/output/output-store';
import { answerTypeSearch } from '../src/search-runner/type-search';
import { ResourceStore } from '../src/store/resource-store';
import type { AsyncRequestInput, AsyncResponse } from '../src/contracts/async-request';


/**
 * Runs the request as the synchronous route would and stores its response. A request the store
 * refuses (4xx) is a response too, not a failure. A Bundle's POST entries were given ids when
 * it was accepted, so a retry rewrites the same resources (no duplicates; a transaction is one
 * database transaction either way).
 */
export async function runAsyncRequest(deps: { pool: Pool; output: OutputStore }, input: AsyncRequestInput): Promise<AsyncResponse> {
  // An earlier attempt that stored its response (and was lost after) has answered already.
  const earlier = storedAsyncResponse(await deps.output.list(asyncDirectory(input.tenant, input.requestId)));
  if (earlier) return earlier;

  const store = new ResourceStore(deps.pool, input.tenant);
  let httpStatus = 200;
  let body: string;
  try {
    if (input.kind === 'search') {
      body = await answerTypeSearch(store, { ...input.search!, fhirBaseUrl: input.fhirBaseUrl });
    } else {
      const request = await readText(deps.output, input.requestKey!);
      if (request === undefined) throw new Error(`the request ${input.requestKey} is missing`);
      const { type, entries } = readBundleRequest(JSON.parse(request));
      const location = (r: { resourceType: string; id: string; versionId?: string }) => `${input.fhirBaseUrl}/${r.resourceType}/${r.id}/_history/${r.versionId}`;
      body = JSON.stringify(type === 'transaction' ? await runTransaction(store, entries, location) : await runBatch(store, entries, location));
    }
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    httpStatus = err.status;
    body = JSON.stringify(operationOutcome(...err.issues));
  }
  const responseKey = asyncResponseKey(input.tenant, input.requestId, httpStatus);
  await writeText(deps.output, responseKey, body);
  return { httpStatus, responseKey };
}
