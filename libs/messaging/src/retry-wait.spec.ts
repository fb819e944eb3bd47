import { formatThrough, lastOffsets, parseThrough } from './dead-letters';
import type { DeadLetter } from './dead-letters';
import { clampRetryWait } from './partition-scheduler';

describe('clampRetryWait', () => {
  it('waits as long as the header says when that is within the policy', () => {
    expect(clampRetryWait(1500, 30_000)).toBe(1500);
  });
  it('a writer clock hours ahead costs at most the longest backoff', () => {
    expect(clampRetryWait(3_600_000, 30_000)).toBe(30_000);
  });
  it('a due time beyond any timer range never reaches setTimeout (which would fire after 1 ms)', () => {
    expect(clampRetryWait(1e15 - Date.now(), 3_600_000)).toBe(3_600_000);
    expect(clampRetryWait(1e15, Number.MAX_SAFE_INTEGER)).toBe(2_147_483_647);
  });
  it('a past or unreadable due time means now', () => {
    expect(clampRetryWait(-5000, 30_000)).toBe(0);
    expect(clampRetryWait(Number.NaN, 30_000)).toBe(0);
  });
});

describe('dead-letter purge bounds', () => {
  const letter = (partition: number, offset: string) => ({ partition, offset }) as DeadLetter;

  it('purges through the last offset seen on each partition', () => {
    const seen = lastOffsets([letter(0, '4'), letter(2, '7'), letter(0, '9'), letter(2, '3')]);
    expect(formatThrough(seen)).toBe('0/9,2/7');
  });
  it('reads --through as list prints it and refuses anything else', () => {
    expect([...parseThrough('0/9, 2/7')]).toEqual([
      [0, '9'],
      [2, '7'],
    ]);
    expect(() => parseThrough('0:9')).toThrow(/--through takes <partition>\/<offset>/);
    expect(() => parseThrough('')).toThrow(/names no partition/);
  });
});
