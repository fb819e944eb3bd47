import { DeadLetter, replayedPrefix } from './dead-letters';

const letter = (partition: number, offset: string) => ({ partition, offset }) as DeadLetter;

describe('replayedPrefix', () => {
  it('deletes through the replayed letters at the head of each partition, never past one that was not replayed', () => {
    const p0 = [letter(0, '3'), letter(0, '4'), letter(0, '5')];
    const p1 = [letter(1, '7'), letter(1, '9')];
    const p2 = [letter(2, '1')];
    const all = [...p0, ...p1, ...p2];
    // Partition 0: the first two of three; partition 1: only the second (the first blocks it); partition 2: all.
    const through = replayedPrefix(all, new Set([p0[0], p0[1], p1[1], p2[0]]));
    expect([...through]).toEqual([
      [0, '4'],
      [2, '1'],
    ]);
  });

  it('deletes nothing when nothing was replayed', () => {
    expect(replayedPrefix([letter(0, '1')], new Set()).size).toBe(0);
  });
});
