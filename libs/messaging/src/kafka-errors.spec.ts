import { isBrokerUnreachable, isRebalancing, isRecordRejected } from './kafka-errors';

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
