/**
 * What the domain throws when it refuses a request: the OperationOutcome issues to answer with
 * (Medplum's OperationOutcomeError has the same shape). The HTTP status follows from the issue
 * code, in one table (`httpStatusOf`), read by the error middleware and by the async-request
 * activity for its stored response. Pure: no HTTP here.
 */
import type { Issue, IssueCode } from './operation-outcome';

export class OperationOutcomeError extends Error {
  readonly issues: Issue[];

  constructor(
    readonly code: IssueCode,
    diagnostics: string,
    readonly options: { expression?: string[]; /** When a client may try again (throttled, transient). */ retryAfterSeconds?: number } = {},
  ) {
    super(diagnostics);
    this.name = 'OperationOutcomeError';
    this.issues = [{ code, diagnostics, expression: options.expression }];
  }

  /** The request is malformed or names a bad value (`parameter`: where). */
  static invalid(diagnostics: string, parameter?: string): OperationOutcomeError {
    return new OperationOutcomeError('invalid', diagnostics, parameter ? { expression: [parameter] } : {});
  }

  static notFound(diagnostics: string): OperationOutcomeError {
    return new OperationOutcomeError('not-found', diagnostics);
  }

  /** Several problems reported at once; `code` (the status) is the first issue's. */
  static ofIssues(issues: Issue[]): OperationOutcomeError {
    const error = new OperationOutcomeError(issues[0].code, issues.map((i) => i.diagnostics).join('; '));
    error.issues.splice(0, 1, ...issues);
    return error;
  }
}

const STATUS_OF_CODE: Record<IssueCode, number> = {
  invalid: 400,
  structure: 400,
  required: 400,
  value: 400,
  'not-supported': 400,
  'business-rule': 400,
  incomplete: 400,
  informational: 400,
  login: 401,
  expired: 401,
  security: 403,
  forbidden: 403,
  'not-found': 404,
  deleted: 410,
  duplicate: 409,
  conflict: 409,
  'too-costly': 413,
  processing: 422,
  throttled: 429,
  exception: 500,
  transient: 503,
  timeout: 503,
};

/** The HTTP status of a refusal with this issue code. */
export function httpStatusOf(code: IssueCode): number {
  return STATUS_OF_CODE[code];
}
