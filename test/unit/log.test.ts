import { createLogger } from '../../src/log';

describe('createLogger', () => {
  it('writes one JSON object a line with time, level, message, bound and call fields, filtered by level', () => {
    const lines: string[] = [];
    const log = createLogger('info', { command: 'serve' }, (line) => lines.push(line)).child({ requestId: 'r1' });
    log.debug('hidden');
    log.info('request', { status: 200 });
    log.error('failed', { error: new Error('boom') });
    expect(lines).toHaveLength(2);
    const [request, failed] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(request).toEqual({ time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/), level: 'info', message: 'request', command: 'serve', requestId: 'r1', status: 200 });
    expect(failed.level).toBe('error');
    expect(failed.error).toEqual({ name: 'Error', message: 'boom', stack: expect.stringContaining('boom') });
  });
});
