import { Storage } from '@google-cloud/storage';
import type { Config } from '../config';
import { GcsOutputStore } from './gcs-output-store';
import { LocalOutputStore } from './local-output-store';
import type { OutputStore } from './output-store';

export function createOutputStore(config: Pick<Config, 'outputBackend' | 'outputDir' | 'gcsBucket' | 'gcsProjectId' | 'gcsApiEndpoint'>): OutputStore {
  if (config.outputBackend === 'local') return new LocalOutputStore(config.outputDir);
  const storage = new Storage({
    ...(config.gcsApiEndpoint ? { apiEndpoint: config.gcsApiEndpoint } : {}),
    ...(config.gcsProjectId ? { projectId: config.gcsProjectId } : {}),
  });
  return new GcsOutputStore(storage, config.gcsBucket!);
}
