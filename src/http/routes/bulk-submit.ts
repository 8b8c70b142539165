/**
 * bulkflow as a Bulk Data recipient. `$bulk-submit` (Bulk Data IG STU4 ballot): a configured
 * provider hands over a manifest of NDJSON files, or says its submission is complete or stopped;
 * each request signals the submission's one `bulkSubmission` workflow, started by the first
 * (signalWithStart). `$bulk-submit-status` answers 202 with the status URL, which answers 202
 * with `X-Progress` until the submission ends, then the BulkSubmitStatusManifest; DELETE there
 * cancels. `$import` (ping-and-pull) pulls a provider's export (or a static manifest) through the
 * same workflow. Everything is checked before anything starts: the submitter is configured for
 * the tenant (and, when it says so, for this client), every URL is under its allowed prefixes.
 */
import { createHash, randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { WorkflowNotFoundError } from '@temporalio/client';
import { urlForDisplay, type ManifestRequest, type SubmissionInput, type SubmissionStatus, type SubmitterRef } from '../../contracts/bulk-submit';
import { isAllowed, type Submitter, type Submitters } from '../../bulk-submit/submitters';
import { parseImportParameters, parseStatusParameters, parseSubmitParameters, statusQueryAsParameters } from '../../bulk-submit/submit-parameters';
import { outcomeFile, statusManifest, submissionProgress, type OutcomeFile } from '../../bulk-submit/status-manifest';
import { OperationOutcomeError } from '../../fhir/outcome-error';
import { operationOutcome } from '../../fhir/operation-outcome';
import { readText, type OutputStore } from '../../output/output-store';
import type { TemporalGateway } from '../../temporal/gateway';
import { bulkSubmission, closeSubmissionSignal, submissionStatusQuery, submitManifestSignal } from '../../../workflows/bulk-submission';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { ownerOf, requireJobAccess, requirePermission } from '../authorize';
import { failedJobError, jobState, JOB_ID, NO_SUCH_JOB } from '../job-state';
import { readJsonBody } from '../read-json-body';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';

type AppContext = Context & { state: AppState };

export interface BulkSubmitDependencies {
  temporal: TemporalGateway;
  taskQueue: string;
  output: OutputStore;
  submitters: Submitters;
  retentionMs: number;
  heartbeatTimeoutMs: number;
  maxParallelFiles: number;
  retryAfterSeconds: number;
  /** Outcome items per status manifest page. */
  pageSize: number;
}

/** The submission's workflow id: the same for every request of one tenant's submitter and submissionId (22 characters, as every job id). */
export function submissionJobId(tenant: string, submitter: SubmitterRef, submissionId: string): string {
  return createHash('sha256').update(JSON.stringify([tenant, submitter.system, submitter.value, submissionId])).digest('base64url').slice(0, 22);
}

export function bulkSubmitRouter(deps: BulkSubmitDependencies): Router<AppState> {
  const router = newRouter();
  router.post('/$bulk-submit', access.token, (ctx) => submit(deps, ctx));
  router.post('/$bulk-submit-status', access.token, (ctx) => statusKickOff(deps, ctx, () => readJsonBody(ctx)));
  router.get('/$bulk-submit-status', access.token, (ctx) => statusKickOff(deps, ctx, () => statusQueryAsParameters(ctx.query)));
  router.get('/bulk-submit-status/:id', access.token, (ctx) => poll(deps, ctx));
  router.delete('/bulk-submit-status/:id', access.token, (ctx) => cancel(deps, ctx));
  router.get('/bulk-submit-status/:id/outcome/:manifest', access.token, (ctx) => outcome(deps, ctx));
  router.post('/$import', access.token, (ctx) => pingAndPull(deps, ctx));
  return router;
}

const statusUrl = (ctx: AppContext, id: string) => `${ctx.state.fhirBaseUrl}/bulk-submit-status/${id}`;

/** Loading writes any type: the caller needs create and update on all of them. */
function requireWriteAll(ctx: AppContext): void {
  requirePermission(ctx, '*', 'c');
  requirePermission(ctx, '*', 'u');
}

/** The configured submitter, if this client may submit as it (a 403 that names what is wrong otherwise). */
function configuredSubmitter(deps: BulkSubmitDependencies, ctx: AppContext, ref: SubmitterRef): Submitter {
  const submitter = deps.submitters.find(ctx.state.tenant, ref);
  if (!submitter) throw OperationOutcomeError.forbidden(`submitter ${ref.system}|${ref.value} is not a provider this tenant accepts submissions from`, 'submitter');
  const caller = ctx.state.caller;
  if (caller && submitter.clientIds && !submitter.clientIds.includes(caller.owner)) {
    throw OperationOutcomeError.forbidden(`this client may not submit as ${ref.system}|${ref.value}`, 'submitter');
  }
  return submitter;
}

function requireAllowed(submitter: Submitter, url: string | undefined, parameter: string): void {
  if (url !== undefined && !isAllowed(submitter, url)) throw OperationOutcomeError.forbidden(`${parameter} ${url} is not under a URL allowed for submitter ${submitter.system}|${submitter.value}`, parameter);
}

async function currentStatus(deps: BulkSubmitDependencies, jobId: string): Promise<SubmissionStatus | undefined> {
  try {
    const found = await jobState(deps.temporal, jobId, 'bulkSubmission', submissionStatusQuery);
    return found.kind === 'running' ? found.status : undefined;
  } catch (err) {
    if (err instanceof OperationOutcomeError) return undefined; // none, or ended: a new one may start
    throw err;
  }
}

const closedError = (submissionId: string, phase: SubmissionStatus['phase']) =>
  new OperationOutcomeError('conflict', `submission ${submissionId} is ${phase === 'loading' ? 'complete and loading' : phase}: it takes no more requests`);

/** A manifest's entries that the workflow still holds (a failed or replaced one does not stop the same URL from loading again). */
const held = (status: SubmissionStatus | undefined, url: string) => status?.manifests.filter((m) => m.url === url) ?? [];

/**
 * A manifest is answered 200 only once its workflow holds it: one that arrives after another
 * request closed the submission (between this route's check and its signal) is dropped by the
 * workflow, so that is a 409 here, never an acceptance of a manifest nobody loads. With no
 * worker to ask, a 503: the signal is recorded, and the provider's retry (a repeated manifest
 * loads once) gets the answer.
 */
async function confirmTaken(deps: BulkSubmitDependencies, submissionId: string, jobId: string, url: string, before: SubmissionStatus | undefined): Promise<void> {
  const after = await currentStatus(deps, jobId);
  if (!after) throw new OperationOutcomeError('transient', `submission ${submissionId}: no worker confirmed manifest ${url} yet; send the same request again`, { retryAfterSeconds: deps.retryAfterSeconds });
  const entries = held(after, url);
  if (entries.length > held(before, url).length || entries.some((m) => m.state !== 'failed' && m.state !== 'replaced')) return;
  throw closedError(submissionId, after.phase);
}

function submissionInput(deps: BulkSubmitDependencies, tenant: string, submitter: SubmitterRef, submissionId: string, jobId: string, extra: Partial<SubmissionInput> = {}): SubmissionInput {
  return { jobId, tenant, submitter, submissionId, retentionMs: deps.retentionMs, heartbeatTimeoutMs: deps.heartbeatTimeoutMs, maxParallelFiles: deps.maxParallelFiles, ...extra };
}

async function submit(deps: BulkSubmitDependencies, ctx: AppContext): Promise<void> {
  requireWriteAll(ctx);
  const request = parseSubmitParameters(await readJsonBody(ctx));
  const submitter = configuredSubmitter(deps, ctx, request.submitter);
  requireAllowed(submitter, request.manifest?.url, 'manifestUrl');
  requireAllowed(submitter, request.manifest?.oauthMetadataUrl, 'oauthMetadataUrl');
  if (request.manifest?.oauthMetadataUrl && !submitter.client) {
    throw OperationOutcomeError.invalid(`oauthMetadataUrl: no client is configured for submitter ${submitter.system}|${submitter.value} to get a token with`, 'oauthMetadataUrl');
  }
  const tenant = ctx.state.tenant;
  const jobId = submissionJobId(tenant, request.submitter, request.submissionId);
  const now = await currentStatus(deps, jobId);
  if (now && now.phase !== 'open') throw closedError(request.submissionId, now.phase);
  if (now && request.manifest?.replacesManifestUrl && !now.manifests.some((m) => m.url === request.manifest!.replacesManifestUrl)) {
    throw OperationOutcomeError.invalid(`replacesManifestUrl ${request.manifest.replacesManifestUrl} is not a manifest of submission ${request.submissionId}`, 'replacesManifestUrl');
  }
  const input = submissionInput(deps, tenant, request.submitter, request.submissionId, jobId);
  const start = { taskQueue: deps.taskQueue, workflowId: jobId, args: [input] as [SubmissionInput], memo: { owner: ownerOf(ctx), tenant }, staticSummary: `Bulk submission ${request.submissionId} of ${request.submitter.system}|${request.submitter.value} (tenant ${tenant})` };
  await deps.temporal.guarded(async (client) => {
    if (request.manifest) await client.workflow.signalWithStart(bulkSubmission, { ...start, signal: submitManifestSignal, signalArgs: [request.manifest] });
    if (request.closeWith) await client.workflow.signalWithStart(bulkSubmission, { ...start, signal: closeSubmissionSignal, signalArgs: [request.closeWith] });
    // `in-progress` alone: the submission is open, its manifests to come.
    if (!request.manifest && !request.closeWith) await client.workflow.start(bulkSubmission, { ...start, workflowIdConflictPolicy: 'USE_EXISTING' });
  });
  if (request.manifest) await confirmTaken(deps, request.submissionId, jobId, request.manifest.url, now);
  ctx.status = 200;
  ctx.set('Content-Location', statusUrl(ctx, jobId));
  ctx.type = FHIR_JSON;
  const what = [request.manifest ? `manifest ${request.manifest.url} accepted` : undefined, request.closeWith ? `submission ${request.closeWith}` : undefined].filter(Boolean).join('; ');
  ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: `Submission ${request.submissionId}: ${what}` });
}

/** `$bulk-submit-status`: 202 with the submission's status URL (the async pattern's kick-off). */
async function statusKickOff(deps: BulkSubmitDependencies, ctx: AppContext, body: () => Promise<unknown> | unknown): Promise<void> {
  // The provider asks about what it submitted: the same access as submitting, checked before anything is read.
  requireWriteAll(ctx);
  const { submitter, submissionId } = parseStatusParameters(await body());
  configuredSubmitter(deps, ctx, submitter);
  const jobId = submissionJobId(ctx.state.tenant, submitter, submissionId);
  await state(deps, ctx, jobId);
  ctx.status = 202;
  ctx.set('Content-Location', statusUrl(ctx, jobId));
  ctx.type = FHIR_JSON;
  ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: `Status of submission ${submissionId}: poll the Content-Location` });
}

async function state(deps: BulkSubmitDependencies, ctx: AppContext, jobId: string) {
  const found = await jobState(deps.temporal, jobId, 'bulkSubmission', submissionStatusQuery);
  requireJobAccess(ctx, found);
  return found;
}

/** The outcome files of an ended submission (rendered from its status and its stored issue files). */
async function outcomes(deps: BulkSubmitDependencies, ctx: AppContext, jobId: string, status: SubmissionStatus): Promise<OutcomeFile[]> {
  const files: OutcomeFile[] = [];
  for (const [i, manifest] of status.manifests.entries()) {
    const issues: string[] = [];
    for (const file of manifest.files) {
      if (!file.load?.issuesKey) continue;
      const text = await readText(deps.output, file.load.issuesKey);
      if (text !== undefined) issues.push(text);
    }
    files.push(outcomeFile(manifest, `${statusUrl(ctx, jobId)}/outcome/${i}`, issues));
  }
  return files;
}

async function poll(deps: BulkSubmitDependencies, ctx: AppContext): Promise<void> {
  const jobId = ctx.params.id;
  const found = await state(deps, ctx, jobId);
  if (found.kind === 'failed') throw failedJobError(found, 'request');
  const status = found.status;
  if (!status || status.phase === 'open' || status.phase === 'loading' || !status.completedAt) {
    ctx.status = 202;
    ctx.set('Retry-After', String(deps.retryAfterSeconds));
    ctx.set('X-Progress', status ? submissionProgress(status) : 'waiting for a worker');
    ctx.body = '';
    return;
  }
  const page = ctx.query.page === undefined ? 1 : Number(ctx.query.page);
  if (!Number.isInteger(page) || page < 1) throw OperationOutcomeError.invalid('page must be a positive integer', 'page');
  const files = await outcomes(deps, ctx, jobId, status);
  if (page > 1 && (page - 1) * deps.pageSize >= files.length) throw OperationOutcomeError.notFound(`The status manifest has no page ${page}`);
  ctx.status = 200;
  ctx.set('Expires', new Date(status.expiresAt!).toUTCString());
  ctx.type = 'application/json';
  ctx.body = statusManifest(status, files, page, deps.pageSize, (p) => `${statusUrl(ctx, jobId)}?page=${p}`);
}

async function outcome(deps: BulkSubmitDependencies, ctx: AppContext): Promise<void> {
  const jobId = ctx.params.id;
  const found = await state(deps, ctx, jobId);
  const status = found.kind === 'running' ? found.status : undefined;
  const index = Number(ctx.params.manifest);
  if (!status?.completedAt || !Number.isInteger(index) || !status.manifests[index]) throw OperationOutcomeError.notFound('No such outcome file');
  const files = await outcomes(deps, ctx, jobId, status);
  ctx.status = 200;
  ctx.type = 'application/fhir+ndjson';
  ctx.body = files[index].text;
}

async function cancel(deps: BulkSubmitDependencies, ctx: AppContext): Promise<void> {
  const jobId = ctx.params.id;
  if (!JOB_ID.test(jobId)) throw OperationOutcomeError.notFound(NO_SUCH_JOB);
  await state(deps, ctx, jobId);
  await deps.temporal.cancel(jobId).catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) throw OperationOutcomeError.notFound(NO_SUCH_JOB);
    throw err;
  });
  ctx.status = 202;
  ctx.type = FHIR_JSON;
  ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: 'The submission was cancelled; what it loaded stays loaded' });
}

/** `$import` ping-and-pull: one submission of one manifest, closed at once, as the tenant's submitter whose allowed URLs hold `exportUrl`. */
async function pingAndPull(deps: BulkSubmitDependencies, ctx: AppContext): Promise<void> {
  requireWriteAll(ctx);
  const request = parseImportParameters(await readJsonBody(ctx));
  const submitter = deps.submitters.forUrl(ctx.state.tenant, request.exportUrl);
  if (!submitter) throw OperationOutcomeError.forbidden(`exportUrl ${request.exportUrl} is not under a URL allowed for any submitter of this tenant`, 'exportUrl');
  const caller = ctx.state.caller;
  if (caller && submitter.clientIds && !submitter.clientIds.includes(caller.owner)) throw OperationOutcomeError.forbidden('this client may not import from that provider', 'exportUrl');
  const manifest: ManifestRequest = {
    source: request.exportType === 'dynamic' ? 'export' : 'manifest',
    url: request.exportUrl,
    fileRequestHeaders: [],
    // A provider whose client key is configured gets a token: its SMART configuration is at the FHIR base of the kick-off URL.
    oauthMetadataUrl: submitter.client && request.exportType === 'dynamic' ? `${request.exportUrl.replace(/\/(?:Patient\/|Group\/[^/?]+\/)?\$export(?:[/?].*)?$/, '')}/.well-known/smart-configuration` : undefined,
    mode: request.mode,
    metadata: [],
  };
  const submissionId = `import-${randomUUID()}`;
  const ref = { system: submitter.system, value: submitter.value };
  const jobId = submissionJobId(ctx.state.tenant, ref, submissionId);
  const input = submissionInput(deps, ctx.state.tenant, ref, submissionId, jobId, { first: manifest, closeWith: 'completed' });
  await deps.temporal.start(bulkSubmission, { taskQueue: deps.taskQueue, workflowId: jobId, args: [input], memo: { owner: ownerOf(ctx), tenant: ctx.state.tenant }, staticSummary: `Import (${request.exportType}) from ${urlForDisplay(request.exportUrl)} (tenant ${ctx.state.tenant})` });
  ctx.status = 202;
  ctx.set('Content-Location', statusUrl(ctx, jobId));
  ctx.type = FHIR_JSON;
  ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: `Import ${submissionId} accepted` });
}
