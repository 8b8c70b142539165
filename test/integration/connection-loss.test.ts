/**
 * A PostgreSQL connection lost while a client is held (checked out of the pool between queries,
 * or a client of its own) must fail that client's next query, not kill the process: three
 * workers holding clients through a PostgreSQL crash all died of Node's unhandled `error` event,
 * and the export waited for a worker that never came back. Each case runs in a process of its own
 * (the built code), because the failure is the process exiting.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { testEnvironment } from '../harness/environment';

const run = promisify(execFile);
const database = path.resolve(__dirname, '../../dist/src/store/database.js');

/** Runs `body` (with `createPool`, `createClient` and `url` in scope) in a Node process; its printed JSON. */
async function inOwnProcess(body: string): Promise<unknown> {
  const script = `
    const { createPool, createClient } = require(${JSON.stringify(database)});
    const url = ${JSON.stringify(testEnvironment.databaseUrl)};
    const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    (async () => { ${body} })().then((result) => console.log(JSON.stringify(result)), (err) => { console.error(err); process.exit(3); });`;
  const { stdout } = await run(process.execPath, ['-e', script], { timeout: 30_000 });
  return JSON.parse(stdout);
}

describe('a lost PostgreSQL connection', () => {
  it('fails the next query of a client checked out of the pool, and the pool goes on with a new connection', async () => {
    const result = await inOwnProcess(`
      const pool = createPool(url, { max: 2 });
      const held = await pool.connect();
      const { rows: [{ pid }] } = await held.query('SELECT pg_backend_pid() AS pid');
      await pool.query('SELECT pg_terminate_backend($1)', [pid]);
      await pause(500);
      const heldQuery = await held.query('SELECT 1').then(() => 'answered', (err) => 'failed');
      held.release();
      const { rows: [{ other }] } = await pool.query('SELECT pg_backend_pid() AS other');
      await pool.end();
      return { heldQuery, newConnection: other !== pid };`);
    expect(result).toEqual({ heldQuery: 'failed', newConnection: true });
  });

  it('fails the next query of a client of its own', async () => {
    const result = await inOwnProcess(`
      const client = createClient(url);
      await client.connect();
      const { rows: [{ pid }] } = await client.query('SELECT pg_backend_pid() AS pid');
      const other = createClient(url);
      await other.connect();
      await other.query('SELECT pg_terminate_backend($1)', [pid]);
      await other.end();
      await pause(500);
      return { query: await client.query('SELECT 1').then(() => 'answered', () => 'failed') };`);
    expect(result).toEqual({ query: 'failed' });
  });
});
