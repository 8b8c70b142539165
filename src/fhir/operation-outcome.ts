import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export type IssueSeverity = OperationOutcomeIssue['severity'];
/** The R4 issue-type codes bulkflow uses (http://hl7.org/fhir/R4/valueset-issue-type.html). */
export type IssueCode =
  | 'invalid'
  | 'structure'
  | 'required'
  | 'value'
  | 'not-supported'
  | 'not-found'
  | 'deleted'
  | 'forbidden'
  | 'login'
  | 'expired'
  | 'security'
  | 'processing'
  | 'exception'
  | 'transient'
  | 'timeout'
  | 'throttled'
  | 'informational'
  | 'too-costly'
  | 'incomplete'
  | 'business-rule'
  | 'duplicate'
  | 'conflict';

export interface Issue {
  severity?: IssueSeverity;
  code: IssueCode;
  diagnostics: string;
  /** FHIRPath-ish location, e.g. the kick-off parameter name. */
  expression?: string[];
}

export function operationOutcome(...issues: Issue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((issue) => ({
      severity: issue.severity ?? 'error',
      code: issue.code,
      diagnostics: issue.diagnostics,
      ...(issue.expression ? { expression: issue.expression } : {}),
    })),
  };
}
