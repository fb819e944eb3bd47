import { isBrokerUnreachable, isRebalancing, isRecordFault, isRecordRejected } from './kafka-errors';

/** Shapes as kafkajs 2.2.4 produces them: protocol errors carry `type`, wrappers carry `cause`. */
const protocol = (type: string, retriable: boolean) =>
  Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, retriable });

describe('kafkajs error classification', () => {
  it('a record the broker refuses for what it is concerns that row alone', () => {
    expect(isRecordRejected(protocol('MESSAGE_TOO_LARGE', false))).toBe(true);
    expect(isRecordRejected(protocol('TOPIC_AUTHORIZATION_FAILED', false))).toBe(true);
    const wrapped = Object.assign(new Error('retries'), {
      name: 'KafkaJSNonRetriableError',
      cause: protocol('INVALID_RECORD', false),
    });
    expect(isRecordRejected(wrapped)).toBe(true);
  });

  it('cluster-wide refusals and outages are not blamed on a row', () => {
    expect(isRecordRejected(protocol('SASL_AUTHENTICATION_FAILED', false))).toBe(false);
    expect(isRecordRejected(protocol('NOT_LEADER_FOR_PARTITION', true))).toBe(false);
    expect(isRecordRejected(new Error('boom'))).toBe(false);
  });

  it('connection trouble and lost answers mean the broker, not the rows', () => {
    const timeout = Object.assign(new Error('Request Produce timed out'), { name: 'KafkaJSRequestTimeoutError' });
    const exhausted = Object.assign(new Error('retries exceeded'), {
      name: 'KafkaJSNumberOfRetriesExceeded',
      cause: Object.assign(new Error('ECONNREFUSED'), { name: 'KafkaJSConnectionError' }),
    });
    expect(isBrokerUnreachable(timeout)).toBe(true);
    expect(isBrokerUnreachable(exhausted)).toBe(true);
    expect(isBrokerUnreachable(protocol('MESSAGE_TOO_LARGE', false))).toBe(false);
  });

  it('a heartbeat refused because the group rebalances asks for a rejoin; other refusals do not', () => {
    expect(isRebalancing(protocol('REBALANCE_IN_PROGRESS', false))).toBe(true);
    expect(isRebalancing(protocol('ILLEGAL_GENERATION', false))).toBe(true);
    expect(isRebalancing(protocol('UNKNOWN_MEMBER_ID', false))).toBe(false);
    expect(isRebalancing(new Error('The group is rebalancing'))).toBe(false);
  });
});

describe('isRecordFault: what may count toward parking an outbox row', () => {
  const exhausted = (cause: Error) =>
    Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause });

  it('blames the record for replies about the record itself, wrapped or not', () => {
    for (const type of ['MESSAGE_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'RECORD_LIST_TOO_LARGE']) {
      expect(isRecordFault(protocol(type, false))).toBe(true);
    }
    expect(isRecordFault(exhausted(protocol('CORRUPT_MESSAGE', true)))).toBe(true);
  });

  it('does not blame it for a partition or broker that is unavailable, however the failure is wrapped', () => {
    for (const type of [
      'LEADER_NOT_AVAILABLE',
      'NOT_LEADER_FOR_PARTITION',
      'UNKNOWN_TOPIC_OR_PARTITION',
      'NOT_ENOUGH_REPLICAS',
      'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
      'REQUEST_TIMED_OUT',
      'BROKER_NOT_AVAILABLE',
      'REPLICA_NOT_AVAILABLE',
    ]) {
      expect(isRecordFault(protocol(type, true))).toBe(false);
      expect(isRecordFault(exhausted(protocol(type, true)))).toBe(false);
    }
    const timeout = Object.assign(new Error('Request Produce timed out'), { name: 'KafkaJSRequestTimeoutError' });
    const refused = Object.assign(new Error('ECONNREFUSED'), { name: 'KafkaJSConnectionError', code: 'ECONNREFUSED' });
    expect(isRecordFault(timeout)).toBe(false);
    expect(isRecordFault(exhausted(refused))).toBe(false);
    expect(isRecordFault(new Error('the send was acknowledged without an answer for emails/1; sending again'))).toBe(
      false,
    );
  });
});
