/** Every export is findable in Temporal visibility (the Web UI's list) by each search attribute, and described in words. */
import { EncryptionCodec } from '../../src/temporal/payload-codec';
import { generatePopulation } from '../../src/generate/population';
import { kickOff, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';

describe('exports in the Temporal Web UI', () => {
  let stack: ExportStack;
  const resources = [...generatePopulation({ patients: 3, seed: 41 })];

  beforeAll(async () => {
    stack = await startExportStack();
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  it('finds a completed export by each search attribute, and its summary and details say what it is', async () => {
    const groupId = resources.find((r) => r.resourceType === 'Group')!.id!;
    const res = await fetch(`${stack.fhir}/Group/${groupId}/$export?_type=Patient,Encounter&_since=2000-01-01T00:00:00Z`, {
      headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' },
    });
    expect(res.status).toBe(202);
    const statusUrl = res.headers.get('content-location')!;
    const exportId = statusUrl.split('/').pop()!;
    const { manifest } = await pollUntilDone(statusUrl);
    const exported = manifest.output.reduce((n, o) => n + o.count, 0);
    const tenant = stack.store.tenant;

    const queries = [
      `BulkflowExportId = '${exportId}'`,
      `BulkflowLevel = 'group' AND BulkflowTenant = '${tenant}'`,
      `BulkflowGroup = '${groupId}' AND BulkflowTenant = '${tenant}'`,
      `BulkflowOwner = 'anonymous' AND BulkflowTenant = '${tenant}'`,
      `BulkflowResourceTypes = 'Encounter' AND BulkflowTenant = '${tenant}'`,
      `BulkflowSince BETWEEN '1999-12-31T00:00:00Z' AND '2000-01-02T00:00:00Z' AND BulkflowTenant = '${tenant}'`,
      `BulkflowExportState = 'completed' AND BulkflowTenant = '${tenant}'`,
      `BulkflowResourceCount = ${exported} AND BulkflowTenant = '${tenant}'`,
    ];
    for (const query of queries) {
      await waitFor(async () => {
        const ids: string[] = [];
        for await (const w of stack.client.workflow.list({ query })) ids.push(w.workflowId);
        return ids.includes(exportId);
      }, 15_000, query);
    }

    const handle = stack.client.workflow.getHandle(exportId);
    const description = await handle.describe();
    expect(await description.staticSummary()).toBe(`Group ${groupId} export of Patient, Encounter since 2000-01-01T00:00:00.000Z for anonymous (tenant ${tenant})`);
    const details = (await description.staticDetails())!;
    expect(details).toContain(`| Level | group |`);
    expect(details).toContain(`| Group | ${groupId} |`);
    expect(details).toContain(`| Types | Patient, Encounter |`);
    const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(metadata.currentDetails).toContain(`**Completed**: ${exported} of ${exported} resources`);
    expect(metadata.currentDetails).toMatch(/\| Encounter \| \d+ \| \d+ \| 1 \|/);

    // The activities' summaries name the partitions they exported.
    const history = await handle.fetchHistory();
    // Encrypted like every payload: read as the Web UI reads them through the codec server.
    const codec = new EncryptionCodec(stack.payloadKeys);
    const summaries = await Promise.all(
      (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'exportPartition' && e.userMetadata?.summary)
        .map(async (e) => Buffer.from((await codec.decode([e.userMetadata!.summary!]))[0].data!).toString()),
    );
    expect(summaries.some((s) => s?.includes('Encounter, partition 1 of 1'))).toBe(true);
  });
});
