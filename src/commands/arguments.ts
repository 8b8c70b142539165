/**
 * Command-line arguments of every `bulkflow` subcommand, on node:util's parseArgs (strict: an
 * unknown option or a missing value is a usage error, never ignored). Each subcommand takes
 * `--help` / `-h` (HELP) for its usage.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export const HELP = { help: { type: 'boolean', short: 'h' } } as const;

export function parseCommandArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
