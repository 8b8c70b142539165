/** What a bench reads back from an export's Temporal history: event times, and where the time went by activity. */
import type { Client } from '@temporalio/client';

/** Where an export's time went, from its workflow history: planning, then the partitions (wall and summed). */
/** A history event's time in seconds. */
export function eventSeconds(t: unknown): number {
  const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number };
  const s = typeof ts.seconds === 'number' ? ts.seconds : (ts.seconds?.toNumber() ?? 0);
  return s + (ts.nanos ?? 0) / 1e9;
}

export async function phases(client: Client, exportId: string): Promise<string> {
  const history = await client.workflow.getHandle(exportId).fetchHistory();
  const seconds = eventSeconds;
  const events = history.events ?? [];
  const start = seconds(events[0].eventTime);
  const scheduled = new Map<number, { type: string; at: number }>();
  const spans: Array<{ type: string; from: number; to: number }> = [];
  for (const e of events) {
    const at = seconds(e.eventTime);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(Number(e.eventId), { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at });
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const from = scheduled.get(Number(done.scheduledEventId))!;
      spans.push({ type: from.type, from: from.at, to: at });
    }
  }
  const plan = spans.find((s) => s.type.startsWith('plan'));
  const parts = spans.filter((s) => !s.type.startsWith('plan') && !s.type.startsWith('delete'));
  const first = Math.min(...parts.map((s) => s.from));
  const last = Math.max(...parts.map((s) => s.to));
  const summed = parts.reduce((n, s) => n + s.to - s.from, 0);
  return `planning ${plan ? (plan.to - plan.from).toFixed(2) : '?'} s (from start ${plan ? (plan.from - start).toFixed(2) : '?'} s); ${parts.length} partitions in ${(last - first).toFixed(2)} s wall, ${summed.toFixed(2)} s summed`;
}
