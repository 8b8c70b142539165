/** A `$sql-export` as a client follows it: poll to the 303, read the manifest, download every output in its format. */
import { parseCsv } from './csv';
import { readParquetRows } from './parquet';

type Row = Record<string, unknown>;

/** Polls until 303, follows it, and returns the manifest parameters. */
export async function completed(statusUrl: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const poll = await fetch(statusUrl, { redirect: 'manual' });
    if (poll.status === 303) {
      expect(await poll.text()).toBe('');
      const result = await fetch(poll.headers.get('location')!);
      return { result, body: (await result.json()) as { resourceType: string; parameter: { name: string; valueString?: string; valueCode?: string; valueUri?: string; part?: { name: string; valueString?: string; valueUri?: string }[] }[] } };
    }
    expect(poll.status).toBe(202);
    expect(poll.headers.get('retry-after')).toBeTruthy();
    expect(poll.headers.get('x-progress')).toBeTruthy();
    const interim = (await poll.json()) as { parameter: { name: string; valueCode?: string }[] };
    expect(interim.parameter.find((p) => p.name === 'status')?.valueCode).toBe('in-progress');
    await new Promise((resolve) => setTimeout(resolve, 1100));
  }
  throw new Error(`${statusUrl} did not complete`);
}

/** Every output's rows, by output name, read back in the export's format. */
export async function downloaded(manifest: Awaited<ReturnType<typeof completed>>['body'], format: string, header = true) {
  const byName: Record<string, Row[]> = {};
  for (const output of manifest.parameter.filter((p) => p.name === 'output')) {
    const name = output.part!.find((p) => p.name === 'name')!.valueString!;
    const rows: Row[] = (byName[name] = []);
    for (const location of output.part!.filter((p) => p.name === 'location')) {
      const res = await fetch(location.valueUri!);
      expect(res.status).toBe(200);
      if (format === 'parquet') {
        rows.push(...readParquetRows(new Uint8Array(await res.arrayBuffer())).rows);
        continue;
      }
      const text = await res.text();
      if (format === 'ndjson') rows.push(...text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row));
      else if (format === 'json') rows.push(...(JSON.parse(text) as Row[]));
      else {
        const records = parseCsv(text);
        const columns = header ? records.shift()! : undefined;
        rows.push(...records.map((r) => Object.fromEntries(r.map((v, i) => [columns?.[i] ?? String(i), v]))));
      }
    }
  }
  return byName;
}

