/** The `asyncRequest` workflow's contract (`Prefer: respond-async` searches and batches). A leaf. */

/** A request made with `Prefer: respond-async`, run as an `asyncRequest` workflow. */
export interface AsyncRequestInput {
  requestId: string;
  tenant: string;
  kind: 'search' | 'batch';
  /** Absolute FHIR base, for links, fullUrls and Locations in the response. */
  fhirBaseUrl: string;
  /** A type search. */
  search?: { resourceType: string; querystring: string; lenient: boolean };
  /** A batch: the key of the request Bundle in the output store (kept out of workflow history). */
  requestKey?: string;
  retentionMs: number;
  /** How long the running request may go without a heartbeat (absent in requests started before it existed: one minute). */
  heartbeatTimeoutMs?: number;
}

/** The response an async request produced, stored in the output store. */
export interface AsyncResponse {
  httpStatus: number;
  responseKey: string;
}

export interface AsyncRequestStatus extends Partial<AsyncResponse> {
  requestId: string;
  kind: AsyncRequestInput['kind'];
  phase: 'running' | 'completed';
  completedAt?: string;
  expiresAt?: string;
}
