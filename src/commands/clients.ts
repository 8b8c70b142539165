/** `bulkflow clients add|list|remove`: the SMART Backend Services clients of the built-in token endpoint. */
import { readFileSync } from 'node:fs';
import type { Config } from '../config';
import { ClientRegistry } from '../auth/clients';
import { createPool } from '../store/database';
import { migrate } from '../store/migrate';

export const clientsUsage = `bulkflow clients add <client-id> --scopes "<scope> ..." (--jwks-url <url> | --jwks-file <file>) [--tenant <tenant>]
bulkflow clients list
bulkflow clients remove <client-id>`;

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}

export async function clientsCommand(config: Config, args: string[]): Promise<number> {
  const pool = createPool(config.databaseUrl, { max: 2 });
  try {
    await migrate(pool);
    const registry = new ClientRegistry(pool);
    const [action, clientId] = args;
    if (action === 'add' && clientId) {
      const scopes = option(args, '--scopes')?.split(/\s+/).filter(Boolean);
      const jwksUrl = option(args, '--jwks-url');
      const jwksFile = option(args, '--jwks-file');
      if (!scopes?.length || (jwksUrl === undefined) === (jwksFile === undefined)) {
        console.error(clientsUsage);
        return 2;
      }
      const tenant = option(args, '--tenant');
      await registry.save({ clientId, scopes, tenant, jwksUrl, jwks: jwksFile ? JSON.parse(readFileSync(jwksFile, 'utf8')) : undefined });
      console.log(`client ${clientId} saved with scopes: ${scopes.join(' ')}`);
      return 0;
    }
    if (action === 'list') {
      for (const c of await registry.list()) console.log(`${c.clientId}\t${c.tenant}\t${c.scopes.join(' ')}\t${c.jwksUrl ?? 'inline JWKS'}`);
      return 0;
    }
    if (action === 'remove' && clientId) {
      const removed = await registry.remove(clientId);
      console.log(removed ? `client ${clientId} removed` : `no client ${clientId}`);
      return removed ? 0 : 1;
    }
    console.error(clientsUsage);
    return 2;
  } finally {
    await pool.end();
  }
}
