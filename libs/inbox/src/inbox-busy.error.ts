import { UnavailableError } from '@app/messaging';

/**
 * Another transaction or claim holds this event's inbox key (a consumer that is still working on it, or one frozen
 * mid-work until PostgreSQL ends its session or its lease runs out). Not a failure of the event: it is retried
 * without using up an attempt — after the holder's lease, when known — and the partition moves on meanwhile.
 */
export class InboxBusyError extends UnavailableError {
  override readonly name = 'InboxBusyError';
}
