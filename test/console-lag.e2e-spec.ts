import { randomUUID } from 'node:crypto';
import { KafkaMonitor, deadLetterTopicOf, retryTopicOf } from '@app/messaging';
import { RunningApp } from '@app/runtime';
import { SystemMonitor } from '../apps/console/src/system/system-monitor';
import { bootConsole } from './support/apps';
import { testKafka } from './support/broker';

/**
 * The console's group lag is KafkaMonitor.groupLag's, the number /metrics and the stall watchdog use: records below
 * the low watermark (deleted by retention or a purge) are nobody's backlog, even when the group committed before them.
 */
describe('console system view: consumer-group lag', () => {
  const id = randomUUID().slice(0, 8);
  const group = `console-lag-${id}`;
  const topic = `console-lag-${id}`;
  const kafka = testKafka();
  const admin = kafka.admin();
  const producer = kafka.producer();
  let app: RunningApp;

  beforeAll(async () => {
    await Promise.all([admin.connect(), producer.connect()]);
    const topics = [topic, retryTopicOf(group), deadLetterTopicOf(group)];
    await admin.createTopics({
      topics: topics.map((name) => ({ topic: name, numPartitions: 1 })),
      waitForLeaders: true,
    });
    const records = (n: number) => Array.from({ length: n }, (_, i) => ({ value: `record ${i}` }));
    await producer.send({ topic, messages: records(5) });
    await producer.send({ topic: retryTopicOf(group), messages: records(2) });
    await producer.send({ topic: deadLetterTopicOf(group), messages: records(1) });
    // The group read one record, then the three after it were deleted: two are left to read.
    await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '1' }] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
    app = await bootConsole({ CONSOLE_GROUPS: group, CONSOLE_APPS: 'nobody=http://127.0.0.1:9' });
  });

  afterAll(async () => {
    await app?.app.close();
    await admin.deleteGroups([group]).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic, retryTopicOf(group), deadLetterTopicOf(group)] }).catch(() => undefined);
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  });

  it('counts from the low watermark where records were deleted, as /metrics does, and the retry backlog apart', async () => {
    const snapshot = await app.app.get(SystemMonitor).snapshot();
    expect(snapshot.kafka).toEqual({ reachable: true });
    expect(snapshot.groups).toEqual([{ group, lag: 2, retryBacklog: 2, deadLetters: 1 }]);
    const rows = await app.app.get(KafkaMonitor).groupLag(group, [topic], true);
    expect(rows.reduce((total, row) => total + row.lag, 0)).toBe(2);
    expect(snapshot.apps).toEqual([{ name: 'nobody', status: 'unreachable', detail: expect.any(String) }]);
  });
});
