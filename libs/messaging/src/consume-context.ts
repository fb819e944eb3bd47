import { BaseRpcContext } from '@nestjs/microservices';
import type { EntityManager } from 'typeorm';

export interface ConsumeInfo {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  consumerGroup: string;
  attempt: number;
  eventId: string;
  correlationId: string;
  transaction?: EntityManager;
  heartbeat: () => Promise<void>;
  /** Aborted when the app shuts down or a claim-mode inbox lost its claim: long work stops. */
  signal: AbortSignal;
  /** Whether no retry would follow if this attempt failed now (attempts or the retry deadline used up). */
  finalAttempt: () => boolean;
}

/** What a handler knows about the message it handles, beside the event itself. */
export class ConsumeContext extends BaseRpcContext<[ConsumeInfo]> {
  constructor(private readonly info: ConsumeInfo) {
    super([info]);
  }
  get topic(): string {
    return this.info.topic;
  }
  get partition(): number {
    return this.info.partition;
  }
  get offset(): string {
    return this.info.offset;
  }
  get key(): string | null {
    return this.info.key;
  }
  get consumerGroup(): string {
    return this.info.consumerGroup;
  }
  /** 1 on first delivery to the handler, then 2, 3… on retries. */
  get attempt(): number {
    return this.info.attempt;
  }
  get eventId(): string {
    return this.info.eventId;
  }
  get correlationId(): string {
    return this.info.correlationId;
  }
  /** The inbox transaction: writes made through it commit together with the dedupe record. */
  get transaction(): EntityManager | undefined {
    return this.info.transaction;
  }
  /** Keeps group membership alive during long work; the runner also beats on a timer while a handler runs. */
  heartbeat(): Promise<void> {
    return this.info.heartbeat();
  }
  /**
   * Aborted when the app shuts down, or (claim-mode inbox) when this process lost its claim — another consumer took
   * the job over after the lease ran out. Long work (a child process) should stop and throw. On shutdown the runner
   * neither retries nor commits the message and the next owner runs it; on a lost claim the inbox throws
   * ClaimLostError, retried without using up an attempt (and skipped once the new owner completed it).
   * `signal.reason` says which.
   */
  get signal(): AbortSignal {
    return this.info.signal;
  }
  /**
   * True when a failure now would be the last one — attempts used up, or the next retry would fall past the retry
   * deadline — so the message would go to the dead-letter topic. A handler that must report failure downstream (a
   * `video.failed.v1`) asks when it fails, and reports instead of throwing. Decided with the longest backoff, so
   * "not final" is never followed by a dead letter.
   */
  get finalAttempt(): boolean {
    return this.info.finalAttempt();
  }
}
