/**
 * The one error that refuses a request: the OperationOutcome issues to answer with (Medplum's
 * OperationOutcomeError has the same shape) and the HTTP status, decided where the error is
 * made: the issue code's usual status (one table), or an explicit one where the code's does not
 * fit (415 for a media type). The error middleware turns it into a response, and only there.
 */
import type { Issue, IssueCode } from './operation-outcome';

export class OperationOutcomeError extends Error {
  readonly issues: Issue[];

  constructor(
    readonly code: IssueCode,
    diagnostics: string,
    readonly options: {
      expression?: string[];
      /** When a client may try again (throttled, transient). */
      retryAfterSeconds?: number;
      /** The HTTP status, where the issue code's usual one does not fit. */
      status?: number;
      /** Response headers the refusal needs (a 401's `WWW-Authenticate`). */
      headers?: Record<string, string>;
    } = {},
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

  /** The caller may not do this (403). */
  static forbidden(diagnostics: string, parameter?: string): OperationOutcomeError {
    return new OperationOutcomeError('forbidden', diagnostics, parameter ? { expression: [parameter] } : {});
  }

  /** Too many requests (429): try again after `retryAfterSeconds`. */
  static throttled(diagnostics: string, retryAfterSeconds: number): OperationOutcomeError {
    return new OperationOutcomeError('throttled', diagnostics, { retryAfterSeconds });
  }

  /** The HTTP status the refusal answers with. */
  get status(): number {
    return this.options.status ?? STATUS_OF_CODE[this.code];
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
