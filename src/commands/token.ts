/**
 * `bulkflow token <client-id> --key <file>`: an access token from a running bulkflow, as a SMART
 * Backend Services client gets one: the token endpoint read from the server's
 * `.well-known/smart-configuration`, a signed client assertion, the `client_credentials` grant.
 * Prints the token alone, for `TOKEN=$(bulkflow token ...)`.
 */
import type { Config } from '../config';
import { HELP, parseCommandArgs, UsageError } from './arguments';
import { clientAssertion } from './client-key';

export const tokenUsage = 'bulkflow token <client-id> --key <file> [--scope "<scope> ..." (system/*.read)] [--fhir <FHIR base URL> (BASE_URL + FHIR_BASE_PATH)]';

const OPTIONS = { key: { type: 'string' }, scope: { type: 'string' }, fhir: { type: 'string' }, ...HELP } as const;

export async function tokenCommand(config: Pick<Config, 'baseUrl' | 'fhirBasePath'>, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n\n${tokenUsage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(tokenUsage);
    return 0;
  }
  const [clientId, ...extra] = positionals;
  if (!clientId || extra.length > 0 || !values.key) {
    console.error(tokenUsage);
    return 2;
  }
  const fhir = (values.fhir ?? `${config.baseUrl}${config.fhirBasePath}`).replace(/\/+$/, '');
  const discovery = await fetch(`${fhir}/.well-known/smart-configuration`);
  if (discovery.status !== 200) {
    console.error(`${fhir}/.well-known/smart-configuration answered ${discovery.status}: is authorization on there (AUTH_ENABLED)?`);
    return 1;
  }
  const { token_endpoint: tokenEndpoint } = (await discovery.json()) as { token_endpoint: string };
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      scope: values.scope ?? 'system/*.read',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await clientAssertion(values.key, clientId, tokenEndpoint),
    }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (res.status !== 200 || !body.access_token) {
    console.error(`the token endpoint refused: ${body.error ?? res.status}: ${body.error_description ?? ''}`);
    return 1;
  }
  console.log(body.access_token);
  return 0;
}
