/**
 * What every partition activity does around its own reading (exportPartition, exportPatientBlocks,
 * and the view exports to come): resume from the last heartbeat, heartbeat its cursor after each
 * finished part (a retry resumes there and rewrites the same part names, so nothing is
 * duplicated), show liveness at most once a second, and stop when cancelled. Between batches
 * (a slow query) the activity's timer beats repeat the same details (liveness.ts).
 */
import { Context } from '@temporalio/activity';
import type { OperationOutcomeIssueJson, PartFile } from '../src/contracts/bulk-export';
import { heartbeatDetails } from './liveness';

/** Heartbeat details: where a retry resumes (everything up to `cursor` is in `parts`). */
export interface PartitionProgress<C> {
  cursor?: C;
  parts: PartFile[];
  /** Resources left out under lenient handling (up to `cursor`). */
  issues?: OperationOutcomeIssueJson[];
}

export class PartitionRun<C> {
  private readonly context = Context.current();
  /** The progress to resume from (an earlier attempt's heartbeat), or a fresh start at `start`. */
  readonly progress: PartitionProgress<C>;
  private lastBeat = 0;

  constructor(start?: C) {
    this.progress = (this.context.info.heartbeatDetails as PartitionProgress<C> | undefined) ?? { cursor: start, parts: [] };
  }

  /** Per received batch: a liveness heartbeat at most once a second (each converts the details; batches come by the thousand). Throws once cancelled, which a heartbeat's response brings. */
  alive(): void {
    if (Date.now() - this.lastBeat >= 1000) {
      heartbeatDetails(this.progress);
      this.lastBeat = Date.now();
    }
    this.context.cancellationSignal.throwIfAborted();
  }

  /** A part was finished: everything up to `cursor` is written, and a retry resumes after it. */
  partDone(cursor: C | undefined): void {
    if (cursor !== undefined) this.progress.cursor = cursor;
    heartbeatDetails(this.progress);
  }
}
