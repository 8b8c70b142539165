import fc from 'fast-check';
import { maxPartitionsFor, MAX_PARTITIONS, MIN_PARTITIONS, PARTITION_HISTORY_BUDGET_BYTES } from '../../src/contracts/history-budget';
import { capPartitions } from '../../src/store/snapshot-planner';

const partitionsOf = (lists: number[][], weights = lists.map(() => 1)) => lists.reduce((n, b, i) => n + (b.length + 1) * weights[i], 0);

describe('capPartitions', () => {
  it('leaves plans within the cap alone', () => {
    const lists = [[1, 2, 3], [10]];
    expect(capPartitions(lists, 6)).toBe(lists);
  });

  it('widens 50,000 one-resource partitions to at most the cap, keeping bounds in order and ranges contiguous', () => {
    const bounds = Array.from({ length: 49_999 }, (_, i) => i + 1); // 50,000 partitions of one resource
    const [capped] = capPartitions([bounds], 1000);
    expect(capped.length + 1).toBeLessThanOrEqual(1000);
    expect(capped.length + 1).toBeGreaterThan(900); // widened no more than needed
    expect(capped).toEqual([...capped].sort((a, b) => a - b));
    expect(capped.every((b) => bounds.includes(b))).toBe(true); // every new bound is an old one: no resource moves out of all ranges
  });

  it('counts each list by its weight (a type read by several views)', () => {
    const lists = [Array.from({ length: 99 }, (_, i) => i), Array.from({ length: 9 }, (_, i) => i)];
    const capped = capPartitions(lists, 50, [3, 1]);
    expect(partitionsOf(capped, [3, 1])).toBeLessThanOrEqual(50);
  });

  it('holds the cap for any plan, down to one partition per list', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 2000 }), (sizes, max) => {
        const lists = sizes.map((n) => Array.from({ length: n }, (_, i) => i));
        const capped = capPartitions(lists, max);
        expect(partitionsOf(capped)).toBeLessThanOrEqual(Math.max(max, lists.length));
        capped.forEach((b, i) => expect(b.every((x) => lists[i].includes(x))).toBe(true));
      }),
    );
  });
});

describe('maxPartitionsFor', () => {
  it('allows the full cap for small requests and shrinks it as each partition repeats more', () => {
    expect(maxPartitionsFor(0)).toBe(MAX_PARTITIONS);
    expect(maxPartitionsFor(100_000)).toBeLessThan(MAX_PARTITIONS);
    expect(maxPartitionsFor(100_000) * (4096 + 2 * 100_000)).toBeLessThanOrEqual(PARTITION_HISTORY_BUDGET_BYTES);
    expect(maxPartitionsFor(50 * 1024 ** 2)).toBe(MIN_PARTITIONS);
  });
});
