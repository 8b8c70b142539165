import { PollThrottle } from '../../src/http/poll-throttle';

describe('PollThrottle', () => {
  let now = 0;
  const throttle = () => new PollThrottle(500, () => now);

  beforeEach(() => {
    now = 1_000_000;
  });

  it('lets a first poll through and a client that waited Retry-After', () => {
    const t = throttle();
    expect(t.secondsTooEarly('job', 'a')).toBe(0);
    t.told('job', 'a', 3);
    now += 3000;
    expect(t.secondsTooEarly('job', 'a')).toBe(0);
  });

  it('allows the tolerance, and refuses a poll that comes earlier, saying how much longer to wait', () => {
    const t = throttle();
    t.told('job', 'a', 3);
    now += 2600;
    expect(t.secondsTooEarly('job', 'a')).toBe(0);
    now -= 1600; // 1 s after being told to wait 3 s
    expect(t.secondsTooEarly('job', 'a')).toBe(2);
  });

  it('keeps jobs and clients apart, and forgets', () => {
    const t = throttle();
    t.told('job', 'a', 5);
    expect(t.secondsTooEarly('job', 'b')).toBe(0);
    expect(t.secondsTooEarly('other', 'a')).toBe(0);
    t.forget('job', 'a');
    expect(t.secondsTooEarly('job', 'a')).toBe(0);
  });

  it('keeps at most maxEntries, dropping the oldest', () => {
    const t = new PollThrottle(0, () => now, 2);
    t.told('j1', 'a', 10);
    t.told('j2', 'a', 10);
    t.told('j3', 'a', 10);
    expect(t.secondsTooEarly('j1', 'a')).toBe(0);
    expect(t.secondsTooEarly('j3', 'a')).toBe(10);
  });
});
