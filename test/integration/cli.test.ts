/** The `bulkflow` command line: every subcommand answers --help, and an unknown option or argument is a usage error (exit 2), never ignored. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');
const run = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, LOG_LEVEL: 'error' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
};

describe('bulkflow command line', () => {
  it('lists every command and answers --help for each with its usage, exit 0', async () => {
    const top = await run('--help');
    expect(top.code).toBe(0);
    const names = [...top.stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]);
    expect(names).toEqual(['dev', 'serve', 'worker', 'migrate', 'import', 'generate', 'clients', 'token', 'schedule', 'temporal']);
    for (const name of names) {
      const help = await run(name, '--help');
      expect([name, help.code]).toEqual([name, 0]);
      expect(help.stdout).toContain(`bulkflow ${name}`);
    }
  });

  it.each([
    [['generate', '--patiens', '3'], /Unknown option '--patiens'/],
    [['generate', '--patients'], /--patients.*argument missing|argument missing/i],
    [['serve', 'extra'], /Unexpected argument 'extra'/],
    [['dev', '--temporal'], /argument missing/i],
    [['schedule', 'create', 'x', '--evry', '1h'], /Unknown option '--evry'/],
    [['clients', 'add', 'c1', '--scope', 'system/*.read'], /Unknown option '--scope'/],
    [['temporal', 'setup', 'now'], /Usage: bulkflow temporal setup/],
    [['frobnicate'], /Unknown command "frobnicate"/],
  ])('refuses %j with exit 2 and says why', async (args, message) => {
    const result = await run(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('generates NDJSON files with the options given', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-cli-'));
    try {
      const result = await run('generate', '--patients', '2', '--seed', '5', '--ndjson', dir);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/generated \d+ resources for 2 patients \(seed 5\)/);
      expect(readdirSync(dir)).toContain('Patient.ndjson');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
