#!/usr/bin/env node
import './tracing-preload'; // first: instrumentations patch http, koa and pg as they load
import { loadConfig, ConfigError } from './config';
import { createLogger } from './log';
import { dev } from './commands/dev';
import { runApi } from './commands/run-api';
import { runWorker } from './commands/run-worker';
import { listenForMetrics } from './commands/metrics-listener';
import { onShutdownSignal } from './commands/shutdown';
import { generateCommand, importCommand, migrateCommand } from './commands/data';
import { clientsCommand } from './commands/clients';
import { scheduleCommand } from './commands/schedule';
import { temporalCommand } from './commands/temporal-setup';
import { MissingSearchAttributesError } from './temporal/search-attribute-registry';
import { stopTracing } from './tracing';

const usage = `Usage: bulkflow <command>

Commands:
  dev      Temporal (dev server; --temporal=server: the Temporal server on PostgreSQL) + worker + API in one process tree (npm start)
  serve    the HTTP API only, against TEMPORAL_ADDRESS
  worker   the Temporal worker only, against TEMPORAL_ADDRESS
  migrate  apply pending database migrations
  import <paths...>
           load Bundles, NDJSON or single resources (files or directories, optionally gzipped)
  generate --patients N [--seed S] [--ndjson DIR]
           make a deterministic synthetic population, into the store or as NDJSON files
  clients add|list|remove
           SMART Backend Services clients of the built-in token endpoint (AUTH_ENABLED=true)
  schedule create|update|list|show|pause|unpause|trigger|delete
           recurring incremental exports, through the admin API (bulkflow schedule help)
  temporal setup
           register bulkflow's search attributes on TEMPORAL_NAMESPACE (serve and worker do it at start)

Configuration comes from environment variables; see the README.`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(usage);
    return command ? 0 : 2;
  }
  const config = loadConfig();
  const log = createLogger(config.logLevel, { command }, undefined, config.logFormat);
  const temporalAddress = config.temporalAddress ?? 'localhost:7233';
  switch (command) {
    case 'dev':
      await dev(config, log, argv.slice(1));
      return 0;
    case 'serve': {
      const api = await runApi(config, temporalAddress, log);
      const metrics = await listenForMetrics(config, log, { api });
      await onShutdownSignal(log, new Promise(() => undefined), async () => {
        await api.close();
        await metrics?.close();
        await stopTracing();
      });
      return 0;
    }
    case 'worker': {
      const worker = await runWorker(config, temporalAddress, log);
      const metrics = await listenForMetrics(config, log, { worker });
      await onShutdownSignal(log, worker.done, async () => {
        await worker.stop();
        await metrics?.close();
        await stopTracing();
      });
      return 0;
    }
    case 'migrate':
      await migrateCommand(config);
      return 0;
    case 'import':
      return importCommand(config, argv.slice(1));
    case 'generate':
      return generateCommand(config, argv.slice(1));
    case 'clients':
      return clientsCommand(config, argv.slice(1));
    case 'temporal':
      return temporalCommand(config, temporalAddress, argv.slice(1));
    case 'schedule':
      return scheduleCommand(argv.slice(1), { apiUrl: config.baseUrl, token: process.env.BULKFLOW_TOKEN });
    default:
      console.error(`Unknown command "${command}".\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof MissingSearchAttributesError) console.error(err.message);
    else console.error(err);
    process.exit(1);
  },
);
