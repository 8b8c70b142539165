import type { Issue, IssueCode } from '../fhir/operation-outcome';

/**
 * An error meant for the client: the error middleware answers it with `status` and an
 * OperationOutcome of `issues`. Anything else thrown is a bug and becomes a logged 500.
 */
export class HttpError extends Error {
  readonly issues: Issue[];
  readonly headers: Record<string, string>;

  constructor(
    readonly status: number,
    code: IssueCode,
    diagnostics: string,
    options: { expression?: string[]; headers?: Record<string, string> } = {},
  ) {
    super(diagnostics);
    this.name = 'HttpError';
    this.issues = [{ code, diagnostics, expression: options.expression }];
    this.headers = options.headers ?? {};
  }

  static badRequest(diagnostics: string, parameter?: string): HttpError {
    return new HttpError(400, 'invalid', diagnostics, parameter ? { expression: [parameter] } : {});
  }

  static notFound(diagnostics: string): HttpError {
    return new HttpError(404, 'not-found', diagnostics);
  }
}
