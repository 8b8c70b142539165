/** `bulkflow clients add|list|remove`: the SMART Backend Services clients of the built-in token endpoint. */
import { readFileSync } from 'node:fs';
import type { Config } from '../config';
import { ClientRegistry } from '../auth/clients';
import { createPool } from '../store/database';
import { migrate } from '../store/migrate';
import { HELP, parseCommandArgs, UsageError } from './arguments';
import { writeClientKey } from './client-key';

export const clientsUsage = `bulkflow clients add <client-id> --scopes "<scope> ..." (--generate-key <file> | --jwks-url <url> | --jwks-file <file>) [--tenant <tenant>]
bulkflow clients list
bulkflow clients remove <client-id>`;

const OPTIONS = { scopes: { type: 'string' }, 'jwks-url': { type: 'string' }, 'jwks-file': { type: 'string' }, 'generate-key': { type: 'string' }, tenant: { type: 'string' }, ...HELP } as const;

export async function clientsCommand(config: Config, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n\n${clientsUsage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(clientsUsage);
    return 0;
  }
  const [action, clientId, ...extra] = positionals;
  const scopes = values.scopes?.split(/\s+/).filter(Boolean);
  const valid =
    extra.length === 0 &&
    ((action === 'add' && clientId && scopes?.length && [values['jwks-url'], values['jwks-file'], values['generate-key']].filter((v) => v !== undefined).length === 1) || (action === 'list' && !clientId) || (action === 'remove' && clientId));
  if (!valid) {
    console.error(clientsUsage);
    return 2;
  }
  const pool = createPool(config.databaseUrl, { max: 2 });
  try {
    await migrate(pool);
    const registry = new ClientRegistry(pool);
    if (action === 'add') {
      const jwksFile = values['jwks-file'];
      const keyFile = values['generate-key'];
      // A new key pair: the private half to a file only its owner reads, the public half registered.
      const jwks = keyFile ? { keys: [await writeClientKey(keyFile)] } : jwksFile ? JSON.parse(readFileSync(jwksFile, 'utf8')) : undefined;
      await registry.save({ clientId, scopes: scopes!, tenant: values.tenant, jwksUrl: values['jwks-url'], jwks });
      console.log(`client ${clientId} saved with scopes: ${scopes!.join(' ')}${keyFile ? `; its private key is in ${keyFile} (bulkflow token ${clientId} --key ${keyFile})` : ''}`);
      return 0;
    }
    if (action === 'list') {
      for (const c of await registry.list()) console.log(`${c.clientId}\t${c.tenant}\t${c.scopes.join(' ')}\t${c.jwksUrl ?? 'inline JWKS'}`);
      return 0;
    }
    const removed = await registry.remove(clientId);
    console.log(removed ? `client ${clientId} removed` : `no client ${clientId}`);
    return removed ? 0 : 1;
  } finally {
    await pool.end();
  }
}
