import { OutboxRelayStatus, relayStalled, STALLED_SEND_MS } from './relay-status';

const idle: OutboxRelayStatus = {
  running: true,
  leader: true,
  published: 0,
  parked: 0,
  lastPublishedAt: null,
  lastError: null,
  failingSince: null,
  sendingSince: null,
};

describe('relayStalled', () => {
  const now = Date.parse('2026-01-01T00:00:10Z');
  const ago = (ms: number) => new Date(now - ms).toISOString();

  it('is false for an idle relay and for a send that is waiting briefly', () => {
    expect(relayStalled(idle, now)).toBe(false);
    expect(relayStalled({ ...idle, sendingSince: ago(STALLED_SEND_MS - 1) }, now)).toBe(false);
  });

  it('is true once sends fail, and while one send waits longer than the limit for its acknowledgement', () => {
    expect(relayStalled({ ...idle, failingSince: ago(1) }, now)).toBe(true);
    expect(relayStalled({ ...idle, sendingSince: ago(STALLED_SEND_MS + 1) }, now)).toBe(true);
  });
});
