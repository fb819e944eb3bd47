import { stablePartitioner } from './producer';

/** Kafka's Java client (Utils.murmur2, toPositive, modulo): the partition every client in any language agrees on. */
function javaPartition(key: string, partitions: number): number {
  const data = Buffer.from(key);
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ data.length;
  const whole = data.length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data.readInt32LE(i);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = data.length % 4;
  if (tail === 3) h ^= data[whole + 2] << 16;
  if (tail >= 2) h ^= data[whole + 1] << 8;
  if (tail >= 1) h = Math.imul(h ^ data[whole], m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return (h & 0x7fffffff) % partitions;
}

describe('stablePartitioner', () => {
  const partitionMetadata = [0, 1, 2, 3, 4, 5].map((partitionId) => ({
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
    partitionErrorCode: 0,
  }));
  const values = Array.from({ length: 40 }, (_, i) => `{"id":"record-${i}"}`);

  it('puts a keyless record on the same partition on every attempt (kafkajs would go round-robin)', () => {
    const chosen: number[] = [];
    const partition = stablePartitioner((_, p) => chosen.push(p));
    const message = { key: null, value: '{"id":"a-keyless-record"}' };
    for (let attempt = 0; attempt < 5; attempt++) partition({ topic: 'emails', partitionMetadata, message });
    expect(new Set(chosen).size).toBe(1);
    // By the hash of its value: the partition murmur2 gives that value as a key, and keyless records spread.
    expect(chosen[0]).toBe(javaPartition(message.value, 6));
    const spread = values.map((value) =>
      partition({ topic: 'emails', partitionMetadata, message: { key: null, value } }),
    );
    expect(spread).toEqual(values.map((value) => javaPartition(value, 6)));
    expect(new Set(spread).size).toBeGreaterThan(3);
  });

  it('keeps murmur2 of the key for keyed records, as the Java client does, and reports each choice', () => {
    const chosen: [string, number][] = [];
    const partition = stablePartitioner((topic, p) => chosen.push([topic, p]));
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    // The key decides, whatever the value: two values of one key land together.
    const p = partition({ topic: 'users', partitionMetadata, message: { key: 'user-1', value: 'x' } });
    const q = partition({ topic: 'users', partitionMetadata, message: { key: 'user-1', value: 'y' } });
    expect([p, q]).toEqual([javaPartition('user-1', 6), javaPartition('user-1', 6)]);
    const placed = keys.map((key) => partition({ topic: 'users', partitionMetadata, message: { key, value: 'v' } }));
    expect(placed).toEqual(keys.map((key) => javaPartition(key, 6)));
    expect(new Set(placed).size).toBeGreaterThan(3);
    expect(chosen.slice(0, 2)).toEqual([
      ['users', p],
      ['users', q],
    ]);
    expect(chosen.slice(2).map(([, partition]) => partition)).toEqual(placed);
  });
});
