/**
 * Workflow changes deployed while exports run, each behind `patched(id)`: a workflow that started
 * before the change replays its history without the patch's marker and keeps the old behaviour;
 * one that starts after records the marker and takes the new. Once no open or retained workflow
 * can lack the marker (all started before the change have ended: longer ago than the longest
 * export plus EXPORT_RETENTION_SECONDS), the id moves to `deprecatePatch` and the old branch
 * goes; a release after that, the id goes too. docs: docs/changing-workflow-code.md.
 */

/** A failed partition cancels its siblings, and a failed export deletes its files (before: both kept running and kept). */
export const FAILURES_END_CLEANLY = 'failures-end-cleanly';
