/**
 * Inputs written by the release before the export window was passed whole still arrive: a
 * running export's own input, activity tasks scheduled before a deploy, a Schedule's action.
 * The recorded histories hold such inputs; each must read as today's contract, naming the same
 * files the earlier release wrote for it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ExportPartitionResult } from '../../src/contracts/bulk-export';
import { readBlocksInput, readExportInput, readPartitionInput, readPlanInput, readScheduledExport } from '../../src/contracts/legacy-shapes';
import { partKey } from '../../src/output/file-keys';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'histories');

interface HistoryEvent {
  eventId: string;
  eventType: string;
  [attributes: string]: unknown;
}

const payload = (attributes: { input?: { payloads: { data: string }[] }; result?: { payloads: { data: string }[] } }) => {
  const data = (attributes.input ?? attributes.result)?.payloads?.[0]?.data;
  return data === undefined ? undefined : JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
};

/** Every activity of the recorded histories: its type, the input it was scheduled with, its result. */
function recordedActivities() {
  const activities: { file: string; type: string; input: any; result: any }[] = [];
  const starts: { file: string; workflowType: string; input: any }[] = [];
  for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) {
    const text = readFileSync(path.join(FIXTURES, file), 'utf8');
    // Histories recorded since payload encryption hold today's shapes; the earlier release's are in clear.
    if (text.includes(Buffer.from('binary/encrypted').toString('base64'))) continue;
    const recorded = JSON.parse(text);
    const events: HistoryEvent[] = recorded.history.events;
    const scheduled = new Map<string, { type: string; input: any }>();
    for (const e of events) {
      const started = e.workflowExecutionStartedEventAttributes as any;
      if (started) starts.push({ file, workflowType: recorded.workflowType, input: payload(started) });
      const s = e.activityTaskScheduledEventAttributes as any;
      if (s) scheduled.set(e.eventId, { type: s.activityType.name, input: payload(s) });
      const c = e.activityTaskCompletedEventAttributes as any;
      if (c) activities.push({ file, ...scheduled.get(String(c.scheduledEventId))!, result: payload(c) });
    }
  }
  return { activities, starts };
}

const { activities, starts } = recordedActivities();

describe('inputs written by the earlier release', () => {
  it('are what the recorded histories hold (flat windows, no `window`)', () => {
    const partitions = activities.filter((a) => a.type === 'exportPartition' || a.type === 'exportPatientBlocks');
    expect(partitions.length).toBeGreaterThan(3);
    expect(partitions.every((a) => a.input.tenant && a.input.transactionTime && !('window' in a.input))).toBe(true);
  });

  it('bulkExport inputs read with the same tenant, _since, _until and compartment', () => {
    const exports = starts.filter((s) => s.workflowType === 'bulkExport');
    expect(exports.length).toBeGreaterThan(0);
    for (const { input } of exports) {
      const read = readExportInput(input);
      expect(read.window).toEqual({ tenant: input.tenant, since: input.since, until: input.until, compartment: input.compartment });
      expect(read.exportId).toBe(input.exportId);
      expect(read.tuning).toEqual(input.tuning);
      expect(read).not.toHaveProperty('tenant');
      expect(readExportInput(read)).toBe(read); // today's shape passes through
    }
  });

  it('planExport inputs read with the same window', () => {
    const plans = activities.filter((a) => a.type === 'planExport');
    expect(plans.length).toBeGreaterThan(0);
    for (const { input } of plans) {
      const read = readPlanInput(input);
      expect(read.window).toEqual({ tenant: input.tenant, since: input.since, until: input.until, compartment: input.compartment });
      expect(read.partitionSize).toBe(input.partitionSize);
    }
  });

  it('exportPartition inputs read as the partition, window and limits that name the files the earlier release wrote', () => {
    const partitions = activities.filter((a) => a.type === 'exportPartition');
    expect(partitions.length).toBeGreaterThan(0);
    for (const { input, result } of partitions as { input: any; result: ExportPartitionResult }[]) {
      const read = readPartitionInput(input);
      expect(read.window).toMatchObject({ tenant: input.tenant, transactionTime: input.transactionTime });
      expect(read.window.compartment).toEqual(input.compartment);
      expect(read.partition).toMatchObject({ type: input.type, partition: input.partition });
      expect(read.limits).toEqual({ maxPartResources: input.maxPartResources, maxPartBytes: input.maxPartBytes });
      result.parts.forEach((part, i) => expect(partKey(read.location, read.partition.type, read.partition.partition, i, read.partition.deletions)).toBe(part.key));
    }
  });

  it('exportPatientBlocks inputs read with their patient range and name the same files', () => {
    const blocks = activities.filter((a) => a.type === 'exportPatientBlocks');
    expect(blocks.length).toBeGreaterThan(0);
    for (const { input, result } of blocks as { input: any; result: ExportPartitionResult }[]) {
      const read = readBlocksInput(input);
      expect(read.window.compartment).toEqual(input.compartment);
      expect(read.partition.blocks).toEqual({ afterPatient: input.afterPatient, upToPatient: input.upToPatient });
      expect(read.types).toEqual(input.types);
      result.parts.forEach((part, i) => expect(partKey(read.location, 'patient-blocks', read.partition.partition, i)).toBe(part.key));
    }
  });

  it('a schedule action holding a flat export reads with its compartment in the window and no _since of its own', () => {
    const scheduled = starts.find((s) => s.workflowType === 'scheduledExport')!.input;
    const legacy = { ...scheduled.export, compartment: { groupId: 'g1' }, until: '2026-01-01T00:00:00.000Z' };
    delete legacy.window;
    const read = readScheduledExport(legacy, scheduled.tenant);
    expect(read.window).toEqual({ tenant: scheduled.tenant, since: undefined, until: '2026-01-01T00:00:00.000Z', compartment: { groupId: 'g1' } });
    expect(read).not.toHaveProperty('compartment');
    expect(read.tuning).toEqual(scheduled.export.tuning);
  });
});
