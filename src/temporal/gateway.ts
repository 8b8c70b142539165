/**
 * The API's one way to Temporal. Every call runs within the outage guard (a deadline, and a 503
 * with Retry-After when the cluster does not answer: see unavailable.ts), written here once.
 */
import { exportStateKey } from '../../workflows/search-attribute-keys';
import { WorkflowNotFoundError, type Client, type WorkflowStartOptions } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import { duringTemporalOutage } from './unavailable';

export interface TemporalGatewayOptions {
  /** Retry-After of the 503 a client gets while Temporal is unreachable. */
  retryAfterSeconds: number;
  /** How long one call may take before the request answers 503. */
  timeoutMs: number;
}

export class TemporalGateway {
  constructor(
    readonly client: Client,
    private readonly options: TemporalGatewayOptions,
  ) {}

  /** Any Temporal call, within the outage guard. */
  guarded<T>(call: (client: Client) => Promise<T>): Promise<T> {
    return duringTemporalOutage(this.client, () => call(this.client), this.options);
  }

  start<W extends Workflow>(workflow: W, options: WorkflowStartOptions<W>) {
    return this.guarded((client) => client.workflow.start(workflow, options));
  }

  /** How many workflows a visibility query matches (e.g. a tenant's running exports). */
  async countWorkflows(query: string): Promise<number> {
    return (await this.guarded((client) => client.workflow.count(query))).count;
  }

  /** The ids of up to `limit` workflows a visibility query matches. */
  async listWorkflowIds(query: string, limit: number): Promise<string[]> {
    return this.guarded(async (client) => {
      const ids: string[] = [];
      for await (const workflow of client.workflow.list({ query, pageSize: limit })) {
        ids.push(workflow.workflowId);
        if (ids.length >= limit) break;
      }
      return ids;
    });
  }

  /** Whether an export's workflow is running and its export not yet finished (read from its description, which does not lag). */
  async isRunningExport(workflowId: string): Promise<boolean> {
    // Only a workflow that does not exist is not running; an outage is a 503 like any other, never a free slot.
    const description = await this.guarded((client) => client.workflow.getHandle(workflowId).describe()).catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
    if (!description || description.status.name !== 'RUNNING') return false;
    const state = description.typedSearchAttributes.get(exportStateKey);
    return state === undefined || state === 'running';
  }

  describe(workflowId: string) {
    return this.guarded((client) => client.workflow.getHandle(workflowId).describe());
  }

  async cancel(workflowId: string): Promise<void> {
    await this.guarded((client) => client.workflow.getHandle(workflowId).cancel());
  }
}
