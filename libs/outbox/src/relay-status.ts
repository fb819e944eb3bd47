export interface OutboxRelayStatus {
  running: boolean;
  leader: boolean;
  published: number;
  /** Rows this process parked since it started. */
  parked: number;
  lastPublishedAt: string | null;
  lastError: string | null;
  failingSince: string | null;
  /**
   * When the send now waiting for the broker's acknowledgement began; null between sends. A send can wait up to the
   * request timeout (a leader waiting for replicas that are gone) before it fails and `failingSince` is set.
   */
  sendingSince: string | null;
}

/** A send waiting this long for its acknowledgement makes the relay count as stalled (see `stalled`). */
export const STALLED_SEND_MS = 5000;

/** Whether the relay cannot publish now: its sends fail, or one has waited too long for the broker. */
export function relayStalled(
  status: Pick<OutboxRelayStatus, 'failingSince' | 'sendingSince'>,
  now = Date.now(),
): boolean {
  if (status.failingSince !== null) return true;
  return status.sendingSince !== null && now - Date.parse(status.sendingSince) > STALLED_SEND_MS;
}
