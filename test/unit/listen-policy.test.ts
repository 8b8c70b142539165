import { loadConfig } from '../../src/config';
import { isLoopback, listenPolicy } from '../../src/commands/listen-policy';

describe('where the API listens, and whether it asks for tokens', () => {
  it.each([
    // env, command, host, authorization on, open to the network
    [{}, 'serve', '0.0.0.0', true, false],
    [{}, 'dev', '127.0.0.1', false, false],
    [{ HOST: '0.0.0.0' }, 'dev', '0.0.0.0', true, false],
    [{ HOST: '10.1.2.3' }, 'dev', '10.1.2.3', true, false],
    [{ HOST: '127.0.0.1' }, 'serve', '127.0.0.1', false, false],
    [{ HOST: '::1' }, 'serve', '::1', false, false],
    [{ HOST: '::' }, 'serve', '::', true, false],
    [{ AUTH_ENABLED: 'true' }, 'dev', '127.0.0.1', true, false],
    [{ AUTH_ENABLED: 'false' }, 'serve', '0.0.0.0', false, true],
    [{ AUTH_ENABLED: 'false', HOST: 'localhost' }, 'serve', 'localhost', false, false],
  ] as const)('%j with %s: listens on %s, authorization %s, open to the network %s', (env, command, host, authEnabled, openToNetwork) => {
    expect(listenPolicy(loadConfig(env), command)).toEqual({ host, authEnabled, openToNetwork });
  });

  it('counts only loopback addresses as loopback', () => {
    expect(['127.0.0.1', '127.8.9.1', '::1', 'localhost'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.org', '::ffff:127.0.0.1x'].map(isLoopback)).toEqual([false, false, false, false, false, false]);
  });
});
