/** `bulkflow temporal setup`: registers bulkflow's search attributes on TEMPORAL_NAMESPACE (what serve and worker check at start). */
import { Connection } from '@temporalio/client';
import type { Config } from '../config';
import { ensureSearchAttributes, exportSearchAttributeKeys } from '../temporal/search-attribute-registry';
import { temporalConnectionOptions } from '../temporal/connection-options';

export async function temporalCommand(config: Config, temporalAddress: string, args: string[]): Promise<number> {
  if (args[0] !== 'setup' || args.length > 1) {
    console.error('Usage: bulkflow temporal setup   (registers the search attributes on TEMPORAL_NAMESPACE at TEMPORAL_ADDRESS)');
    return 2;
  }
  const connection = await Connection.connect(temporalConnectionOptions(temporalAddress, config.temporalTls));
  try {
    const registered = await ensureSearchAttributes(connection, config.temporalNamespace, { register: true });
    const present = exportSearchAttributeKeys.map((key) => key.name).filter((name) => !registered.includes(name));
    console.log(`namespace ${config.temporalNamespace}: registered ${registered.length ? registered.join(', ') : 'nothing'}; already present: ${present.length ? present.join(', ') : 'none'}`);
    return 0;
  } finally {
    await connection.close();
  }
}
