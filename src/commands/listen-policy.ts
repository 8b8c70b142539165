/**
 * Where the API listens and whether it asks for tokens, decided in one place: deny by default.
 * `serve` listens on every interface and `dev` on loopback unless HOST says otherwise;
 * authorization is on wherever the API listens beyond loopback, unless AUTH_ENABLED=false says
 * so explicitly, and then the API warns at start and in its CapabilityStatement.
 */
import { isIP } from 'node:net';
import type { Config } from '../config';

export interface ListenPolicy {
  host: string;
  authEnabled: boolean;
  /** Authorization explicitly off on an address others can reach. */
  openToNetwork: boolean;
}

/** Loopback only: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export function listenPolicy(config: Pick<Config, 'host' | 'auth'>, command: 'serve' | 'dev'): ListenPolicy {
  const host = config.host ?? (command === 'dev' ? '127.0.0.1' : '0.0.0.0');
  const loopback = isLoopback(host);
  const authEnabled = config.auth.enabled ?? !loopback;
  return { host, authEnabled, openToNetwork: !authEnabled && !loopback };
}
