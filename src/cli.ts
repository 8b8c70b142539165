#!/usr/bin/env node
import './tracing-preload'; // first: instrumentations patch http, koa and pg as they load
import { loadConfig, ConfigError, type Config } from './config';
import { HELP, parseCommandArgs, UsageError, type Options } from './commands/arguments';
import { createLogger, type Logger } from './log';
import { dev } from './commands/dev';
import { runApi } from './commands/run-api';
import { runWorker } from './commands/run-worker';
import { listenForMetrics } from './commands/metrics-listener';
import { onShutdownSignal } from './commands/shutdown';
import { generateCommand, importCommand, migrateCommand } from './commands/data';
import { clientsCommand, clientsUsage } from './commands/clients';
import { tokenCommand, tokenUsage } from './commands/token';
import { scheduleCommand, scheduleUsage } from './commands/schedule';
import { temporalCommand } from './commands/temporal-setup';
import { MissingSearchAttributesError } from './temporal/search-attribute-registry';
import { stopTracing } from './tracing';

/** Every subcommand: what it does, its usage, its options (node:util parseArgs) and how it runs. */
interface Command {
  summary: string;
  usage: string;
  options?: Options;
  positionals?: boolean;
  /** Subcommands with actions of their own parse the rest themselves (schedule, clients, temporal). */
  raw?: boolean;
  run(context: { config: Config; log: Logger; temporalAddress: string; values: Record<string, unknown>; positionals: string[]; args: string[] }): Promise<number>;
}

const commands: Record<string, Command> = {
  dev: {
    summary: 'Temporal (the dev server, or --temporal=server: the Temporal server on PostgreSQL) + worker + API in one process tree (npm start)',
    usage: 'bulkflow dev [--temporal=dev-server|server]',
    options: { temporal: { type: 'string' } },
    async run({ config, log, values }) {
      await dev(config, log, values.temporal as string | undefined);
      return 0;
    },
  },
  serve: {
    summary: 'the HTTP API only, against TEMPORAL_ADDRESS',
    usage: 'bulkflow serve',
    async run({ config, log, temporalAddress }) {
      const api = await runApi(config, temporalAddress, log, 'serve');
      const metrics = await listenForMetrics(config, log, { api });
      await onShutdownSignal(log, new Promise(() => undefined), async () => {
        await api.close();
        await metrics?.close();
        await stopTracing();
      });
      return 0;
    },
  },
  worker: {
    summary: 'the Temporal worker only, against TEMPORAL_ADDRESS',
    usage: 'bulkflow worker',
    async run({ config, log, temporalAddress }) {
      const worker = await runWorker(config, temporalAddress, log);
      const metrics = await listenForMetrics(config, log, { worker });
      await onShutdownSignal(log, worker.done, async () => {
        await worker.stop();
        await metrics?.close();
        await stopTracing();
      });
      return 0;
    },
  },
  migrate: {
    summary: 'apply pending database migrations',
    usage: 'bulkflow migrate',
    async run({ config }) {
      await migrateCommand(config);
      return 0;
    },
  },
  import: {
    summary: 'load Bundles, NDJSON or single resources (files or directories, optionally gzipped)',
    usage: 'bulkflow import <file-or-directory>...',
    positionals: true,
    run: ({ config, positionals }) => importCommand(config, positionals),
  },
  generate: {
    summary: 'make a deterministic synthetic population, into the store or as NDJSON files',
    usage: 'bulkflow generate [--patients N (10)] [--seed S (1)] [--ndjson DIR]',
    options: { patients: { type: 'string' }, seed: { type: 'string' }, ndjson: { type: 'string' } },
    run: ({ config, values }) => generateCommand(config, values as { patients?: string; seed?: string; ndjson?: string }),
  },
  clients: {
    summary: 'SMART Backend Services clients of the built-in token endpoint',
    usage: clientsUsage,
    raw: true,
    run: ({ config, args }) => clientsCommand(config, args),
  },
  token: {
    summary: 'an access token from a running bulkflow for a client of `bulkflow clients add --generate-key`',
    usage: tokenUsage,
    raw: true,
    run: ({ config, args }) => tokenCommand(config, args),
  },
  schedule: {
    summary: 'recurring incremental exports, through the admin API',
    usage: scheduleUsage,
    raw: true,
    run: ({ config, args }) => scheduleCommand(args, { apiUrl: config.baseUrl, token: process.env.BULKFLOW_TOKEN }),
  },
  temporal: {
    summary: "register bulkflow's search attributes on TEMPORAL_NAMESPACE (serve and worker do it at start)",
    usage: 'bulkflow temporal setup',
    positionals: true,
    run: ({ config, temporalAddress, positionals }) => temporalCommand(config, temporalAddress, positionals),
  },
};

const usage = `Usage: bulkflow <command> [options]   (bulkflow <command> --help for its options)

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

Configuration comes from environment variables; see docs/configuration.md.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`Unknown command "${name}".\n\n${usage}`);
    return 2;
  }
  let values: Record<string, unknown> = {};
  let positionals: string[] = [];
  try {
    if (command.raw) {
      if (args.length === 1 && (args[0] === '--help' || args[0] === '-h' || args[0] === 'help')) values = { help: true };
    } else {
      ({ values, positionals } = parseCommandArgs({ args, options: { ...command.options, ...HELP }, allowPositionals: command.positionals ?? false, strict: true }));
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n\nUsage: ${command.usage}`);
    return 2;
  }
  if (values.help) {
    console.log(`${command.summary}\n\nUsage: ${command.usage}`);
    return 0;
  }
  const config = loadConfig();
  const log = createLogger(config.logLevel, { command: name }, undefined, config.logFormat);
  return command.run({ config, log, temporalAddress: config.temporalAddress ?? 'localhost:7233', values, positionals, args });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof MissingSearchAttributesError) console.error(err.message);
    else console.error(err);
    process.exit(1);
  },
);
