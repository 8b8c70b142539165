/**
 * Structured logs on pino: one JSON object per line on stdout (`time`, `level`, `message`, the
 * bound fields, then the call's), filtered by level; `LOG_FORMAT=pretty` prints them for a
 * terminal through pino-pretty instead. Errors in fields serialise as name, message and stack.
 */
import pino, { type DestinationStream } from 'pino';
import pretty from 'pino-pretty';
import type { LogFormat, LogLevel } from './config';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Every Error anywhere in the fields as `{ name, message, stack }` (pino's own serializer only knows `err`). */
function withErrors(fields: LogFields): LogFields {
  let out: LogFields | undefined;
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) (out ??= { ...fields })[key] = { name: value.name, message: value.message, stack: value.stack };
  }
  return out ?? fields;
}

function wrap(logger: pino.Logger): Logger {
  return {
    debug: (message, fields) => logger.debug(fields ? withErrors(fields) : {}, message),
    info: (message, fields) => logger.info(fields ? withErrors(fields) : {}, message),
    warn: (message, fields) => logger.warn(fields ? withErrors(fields) : {}, message),
    error: (message, fields) => logger.error(fields ? withErrors(fields) : {}, message),
    child: (fields) => wrap(logger.child(withErrors(fields))),
  };
}

/**
 * A logger at `level` with `bound` fields on every line. `write` receives each line (tests);
 * without it lines go to stdout, as JSON or, with `format: 'pretty'`, for reading.
 */
export function createLogger(level: LogLevel, bound: LogFields = {}, write?: (line: string) => void, format: LogFormat = 'json'): Logger {
  const destination: DestinationStream = write
    ? { write: (line: string) => write(line.endsWith('\n') ? line.slice(0, -1) : line) }
    : format === 'pretty'
      ? pretty({ colorize: process.stdout.isTTY, messageKey: 'message', sync: true })
      : pino.destination({ fd: 1, sync: true });
  const logger = pino(
    {
      level,
      base: undefined, // no pid or hostname: the fields are bulkflow's
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return wrap(Object.keys(bound).length > 0 ? logger.child(withErrors(bound)) : logger);
}
