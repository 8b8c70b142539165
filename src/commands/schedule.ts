/** `bulkflow schedule ...`: the admin API of recurring exports and lake schedules, from the command line (over HTTP). */
import { readFileSync } from 'node:fs';
import { HELP, parseCommandArgs, UsageError } from './arguments';

export const scheduleUsage = `bulkflow schedule create <id> (--every <1h|15m|...> | --cron "<m h dom mon dow>" [--time-zone <zone>])
                         [--level system|patient|group] [--group <id>] [--type <T,...>] [--type-filter <query>]...
                         [--elements <e,...>] [--include-associated-data <v>] [--start <instant>] [--prefix <path>]
                         [--retention <7d>] [--webhook <url>] [--paused]
bulkflow schedule create <id> (--every ... | --cron ...) --sql-export <file> [--destination <prefix>]
                         [--mode incremental|full] [--full-every <n>] [--retention <1d>] [--paused]
                         (a lake schedule: <file> holds the $sql-export kick-off's Parameters, JSON)
bulkflow schedule update <id> (the same options: the schedule's whole new definition)
bulkflow schedule list
bulkflow schedule show <id>
bulkflow schedule pause|unpause <id> [--note <text>]
bulkflow schedule trigger <id>
bulkflow schedule delete <id>
Options for every command: --api <url> (default BASE_URL), --tenant <tenant>, --token <access token> (or BULKFLOW_TOKEN)`;

/** Option → field of the schedule definition. */
const VALUE_OPTIONS: Record<string, string> = {
  every: 'every',
  cron: 'cron',
  'time-zone': 'timeZone',
  level: 'level',
  group: 'group',
  start: 'start',
  prefix: 'outputPrefix',
  retention: 'retention',
  webhook: 'webhook',
  note: 'note',
  destination: 'destination',
  mode: 'mode',
};
/** Option (repeatable) → kick-off parameter of the scheduled exports. */
const PARAMETER_OPTIONS: Record<string, string> = {
  type: '_type',
  'type-filter': '_typeFilter',
  elements: '_elements',
  'include-associated-data': 'includeAssociatedData',
  'organize-output-by': 'organizeOutputBy',
};
const CONNECTION_OPTIONS = ['api', 'tenant', 'token'];

/** Lake schedule options whose value is not the field's as written. */
const LAKE_OPTIONS = ['sql-export', 'full-every'];

const OPTIONS = {
  ...Object.fromEntries([...Object.keys(VALUE_OPTIONS), ...CONNECTION_OPTIONS, ...LAKE_OPTIONS].map((name) => [name, { type: 'string' as const }])),
  ...Object.fromEntries(Object.keys(PARAMETER_OPTIONS).map((name) => [name, { type: 'string' as const, multiple: true as const }])),
  paused: { type: 'boolean' as const },
  ...HELP,
};

/** The positional arguments, the schedule definition the options describe, and where to send it. */
export function parseScheduleArgs(args: string[]): { positional: string[]; body: Record<string, unknown>; connection: Record<string, string>; help: boolean } {
  const { values, positionals } = parseCommandArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  const given = values as Record<string, string | string[] | boolean | undefined>;
  const body: Record<string, unknown> = {};
  const parameters: Record<string, string[]> = {};
  const connection: Record<string, string> = {};
  for (const [option, field] of Object.entries(VALUE_OPTIONS)) if (given[option] !== undefined) body[field] = given[option];
  for (const [option, parameter] of Object.entries(PARAMETER_OPTIONS)) if (given[option] !== undefined) parameters[parameter] = given[option] as string[];
  for (const option of CONNECTION_OPTIONS) if (given[option] !== undefined) connection[option] = given[option] as string;
  if (given.paused) body.paused = true;
  if (Object.keys(parameters).length > 0) body.parameters = parameters;
  if (given['sql-export'] !== undefined) body.sqlExport = sqlExportFile(given['sql-export'] as string);
  if (given['full-every'] !== undefined) {
    const n = Number(given['full-every']);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--full-every takes a whole number of runs, got ${JSON.stringify(given['full-every'])}`);
    body.fullEvery = n;
  }
  return { positional: positionals, body, connection, help: given.help === true };
}

/** The `$sql-export` kick-off Parameters a lake schedule runs, read from a JSON file. */
function sqlExportFile(file: string): unknown {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--sql-export: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--sql-export: ${file} is not JSON: ${(err as Error).message}`);
  }
}

/** Runs one schedule command against the API; prints the JSON answer, or the OperationOutcome's diagnostics. */
export async function scheduleCommand(
  args: string[],
  defaults: { apiUrl: string; token?: string },
  print: (line: string) => void = console.log,
  printError: (line: string) => void = console.error,
): Promise<number> {
  let parsed;
  try {
    parsed = parseScheduleArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    printError(`${err.message}\n\n${scheduleUsage}`);
    return 2;
  }
  const { positional, body, connection, help } = parsed;
  if (help) {
    print(scheduleUsage);
    return 0;
  }
  const [action, id] = positional;
  const api = (connection.api ?? defaults.apiUrl).replace(/\/$/, '');
  const base = `${api}${connection.tenant ? `/t/${encodeURIComponent(connection.tenant)}` : ''}/admin/schedules`;
  const token = connection.token ?? defaults.token;
  const one = id ? `${base}/${encodeURIComponent(id)}` : undefined;
  const requests: Record<string, [string, string | undefined, unknown?]> = {
    create: ['POST', base, { id, ...body }],
    update: ['PUT', one, body],
    list: ['GET', base],
    show: ['GET', one],
    pause: ['POST', one && `${one}/pause`, body],
    unpause: ['POST', one && `${one}/unpause`, body],
    trigger: ['POST', one && `${one}/trigger`],
    delete: ['DELETE', one],
  };
  const request = action ? requests[action] : undefined;
  if (!request || !request[1] || (action !== 'list' && !id) || (action === 'list' && id)) {
    printError(scheduleUsage);
    return 2;
  }
  const [method, url, payload] = request;
  const response = await fetch(url!, {
    method,
    headers: { Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json' } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: payload ? JSON.stringify(payload) : undefined,
  });
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      const outcome = JSON.parse(text) as { issue?: Array<{ diagnostics?: string }> };
      message = outcome.issue?.map((i) => i.diagnostics).join('; ') || text;
    } catch {
      // not JSON: print as is
    }
    printError(`${method} ${url} answered ${response.status}: ${message}`);
    return 1;
  }
  print(text ? JSON.stringify(JSON.parse(text), null, 2) : `${action} ${id}: done (${response.status})`);
  return 0;
}
