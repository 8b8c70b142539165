import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { PipelinedWriter } from '../store/pipelined-writer';
import type { ResourceStore } from '../store/resource-store';
import { generatePopulation, type PopulationOptions } from './population';

export interface GenerateProgress {
  resources: number;
  /** Patients written (each patient's resources follow it). */
  patients: number;
}

/** Writes a generated population into the store in batches; returns resources written by type. */
export async function generateIntoStore(
  store: ResourceStore,
  options: PopulationOptions & { batchSize?: number; onProgress?: (p: GenerateProgress) => void },
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let resources = 0;
  let patients = 0;
  const writer = new PipelinedWriter(
    store,
    (results) => {
      resources += results.length;
      for (const r of results) if (r.resourceType === 'Patient') patients++;
      options.onProgress?.({ resources, patients });
    },
    options.batchSize ?? 2000,
  );
  for (const resource of generatePopulation(options)) {
    counts[resource.resourceType] = (counts[resource.resourceType] ?? 0) + 1;
    await writer.add({ op: 'put', resource });
  }
  await writer.finish();
  return counts;
}

/** Writes a generated population as one NDJSON file per type (`<Type>.ndjson`) into `dir`. */
export async function generateToNdjson(dir: string, options: PopulationOptions): Promise<Record<string, number>> {
  await mkdir(dir, { recursive: true });
  const files = new Map<string, WriteStream>();
  const counts: Record<string, number> = {};
  for (const resource of generatePopulation(options)) {
    let file = files.get(resource.resourceType);
    if (!file) {
      file = createWriteStream(path.join(dir, `${resource.resourceType}.ndjson`));
      files.set(resource.resourceType, file);
    }
    counts[resource.resourceType] = (counts[resource.resourceType] ?? 0) + 1;
    if (!file.write(JSON.stringify(resource) + '\n')) await once(file, 'drain');
  }
  await Promise.all([...files.values()].map((f) => new Promise<void>((resolve, reject) => f.end((err?: Error | null) => (err ? reject(err) : resolve())))));
  return counts;
}
