/**
 * How many partitions one export may have, so that no request a client can send passes
 * Temporal's history limits (50 MB or 51,200 events per workflow; warnings from 10 MB and
 * 10,240 events), without continue-as-new:
 *
 * - events: a partition adds 3 (scheduled, started, completed) and at most 3 of the workflow task
 *   that takes its result, so 1,000 partitions are at most 6,000 events besides a few dozen others;
 * - bytes: a partition's input is about 1 KB (location, window, its bounds, part limits; the
 *   patient list is kept in the store, patient-lists.ts) plus what the request repeats in every
 *   partition (`_elements`, `_typeFilter`, a view definition), its result about 200 bytes per part
 *   file. Partitions are capped so that 4 KB plus twice the repeated bytes, times their number,
 *   stays within 20 MB, and at 1,000; never below 16.
 *
 * Planning meets the cap by widening partitions (capPartitions in snapshot-planner.ts), never
 * by leaving resources out. A leaf.
 */
export const MAX_PARTITIONS = 1000;
export const MIN_PARTITIONS = 16;
export const PARTITION_HISTORY_BUDGET_BYTES = 20 * 1024 ** 2;

/** The partition cap for a request that repeats `repeatedBytes` in every partition's input. */
export function maxPartitionsFor(repeatedBytes: number): number {
  return Math.max(MIN_PARTITIONS, Math.min(MAX_PARTITIONS, Math.floor(PARTITION_HISTORY_BUDGET_BYTES / (4096 + 2 * repeatedBytes))));
}
