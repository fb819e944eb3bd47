import type { Positions } from '@app/messaging';

interface Copy {
  topic: string;
  partition: number;
  offset: number;
}

/** A relay that crashed between sending and marking sends again: one event id at a few offsets, no more. */
const MAX_COPIES = 4;

/**
 * Where the recently seen event ids sit in the streamed topics, as the live feed and history reads meet them: an
 * event id seen at a second offset (a relay re-send) is known to have an earlier copy. Bounded: the least recently
 * seen ids are forgotten first.
 */
export class RecentEvents {
  private readonly copies = new Map<string, Copy[]>();

  constructor(private readonly capacity: number) {}

  record(id: string, at: Copy): void {
    const known = this.copies.get(id);
    if (!known) {
      this.copies.set(id, [{ topic: at.topic, partition: at.partition, offset: at.offset }]);
      if (this.copies.size > this.capacity) this.copies.delete(this.copies.keys().next().value!);
      return;
    }
    // Most recently seen last: the map's order is the eviction order.
    this.copies.delete(id);
    this.copies.set(id, known);
    if (!known.some((c) => same(c, at)) && known.length < MAX_COPIES) {
      known.push({ topic: at.topic, partition: at.partition, offset: at.offset });
    }
  }

  /**
   * Whether a stream standing at `positions` has passed another copy of the event at `at`: it was sent that event
   * id already, or its stream started after it — either way it must not get it again.
   */
  passedAnother(id: string, at: Copy, positions: Positions): boolean {
    const known = this.copies.get(id);
    if (!known) return false;
    return known.some((c) => !same(c, at) && c.offset < (positions[c.topic]?.[c.partition] ?? 0));
  }

  get size(): number {
    return this.copies.size;
  }
}

function same(a: Copy, b: Copy): boolean {
  return a.topic === b.topic && a.partition === b.partition && a.offset === b.offset;
}
