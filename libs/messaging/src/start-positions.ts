/**
 * Where a consumer starts each partition it is given, on every join of its group (first start, a crash restart, a
 * replacement after a stall, a rebalance, a rejoin after a freeze past the session). For a per-instance group,
 * which commits nothing, the broker would otherwise start every partition at its end and skip what was written
 * while the consumer was away. A live fan-out (the notifier) answers with the position it has delivered up to.
 */
export interface StartPositions {
  /**
   * Resolves once `startOffset` can answer for every partition: awaited before the consumer first joins, so no
   * fetch happens before the positions are known.
   */
  ready?(): Promise<void>;
  /**
   * The offset to start the partition at, or undefined for the group's own position. Answered synchronously: the
   * first fetch follows the join at once.
   */
  startOffset(topic: string, partition: number): string | undefined;
}
