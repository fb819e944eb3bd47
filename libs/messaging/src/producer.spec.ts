import { stablePartitioner } from './producer';

describe('stablePartitioner', () => {
  const partitionMetadata = [0, 1, 2, 3, 4, 5].map((partitionId) => ({
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
    partitionErrorCode: 0,
  }));

  it('puts a keyless record on the same partition on every attempt (kafkajs would go round-robin)', () => {
    const chosen: number[] = [];
    const partition = stablePartitioner((_, p) => chosen.push(p));
    const message = { key: null, value: '{"id":"a-keyless-record"}' };
    for (let attempt = 0; attempt < 5; attempt++) partition({ topic: 'emails', partitionMetadata, message });
    expect(new Set(chosen).size).toBe(1);
  });

  it('keeps murmur2 of the key for keyed records, as the Java client does, and reports each choice', () => {
    const chosen: [string, number][] = [];
    const partition = stablePartitioner((topic, p) => chosen.push([topic, p]));
    const p = partition({ topic: 'users', partitionMetadata, message: { key: 'user-1', value: 'x' } });
    const q = partition({ topic: 'users', partitionMetadata, message: { key: 'user-1', value: 'y' } });
    expect(p).toBe(q);
    expect(chosen).toEqual([
      ['users', p],
      ['users', q],
    ]);
  });
});
