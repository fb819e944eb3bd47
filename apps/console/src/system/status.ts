/**
 * What the console's server answers and the page reads: the one definition of each shape, imported by the page's
 * modules (apps/console/web) as types only. Nothing here may import anything: the page compiles it for the browser.
 */

export interface AppHealth {
  name: string;
  /** `ready` (200), `not-ready` (503: its body says why) or `unreachable` (no answer in time). */
  status: 'ready' | 'not-ready' | 'unreachable';
  detail?: string;
}

export interface TopicRate {
  topic: string;
  /** Messages ever written (sum of the partitions' high watermarks). */
  messages: number;
  /** Since the previous snapshot; null on the first. */
  perSecond: number | null;
}

export interface GroupState {
  group: string;
  /** Messages of its topics not yet committed (KafkaMonitor.groupLag); null when unknown (no broker answer). */
  lag: number | null;
  /** Failed messages waiting on the group's retry topic. */
  retryBacklog: number | null;
  /** Messages on the group's dead-letter topic. */
  deadLetters: number | null;
}

/** `event: system` of GET /system/stream. */
export interface SystemSnapshot {
  at: string;
  apps: AppHealth[];
  kafka: { reachable: boolean; error?: string };
  topics: TopicRate[];
  groups: GroupState[];
}

/** GET /config.json: what the page needs to know about its surroundings. */
export interface ConsoleSettings {
  /** users-api as the browser reaches it. */
  apiUrl: string;
  notifierUrl: string;
  mailUrl: string | null;
  groups: string[];
  refreshMs: number;
}

/** POST /session: whose token the cookie for /system/stream now carries, and until when. */
export interface ConsoleSession {
  userId: string;
  role: 'user' | 'admin';
  expiresAt: string;
}

/** A dead letter as the page lists it: never its value (event data is user input and may be personal). */
export interface DeadLetterSummary {
  partition: number;
  offset: string;
  eventId: string | null;
  eventType: string | null;
  originalTopic: string | null;
  reason: string | null;
  errorClass: string | null;
  /** Email addresses replaced by `<address>`. */
  errorMessage: string | null;
  attempts: number | null;
  failedAt: string | null;
}

/** GET /dead-letters?group=: oldest first, and `through`, what a purge of exactly these would delete up to. */
export interface DeadLetterListing {
  group: string;
  letters: DeadLetterSummary[];
  through: string;
}

/** POST /dead-letters/replay. */
export interface ReplayAnswer {
  group: string;
  replayed: DeadLetterSummary[];
  /** How many left the dead-letter topic (those no older letter precedes in their partition). */
  removed: number;
}

/** POST /dead-letters/purge. */
export interface PurgeAnswer {
  group: string;
  deleted: number;
}

/** Every refusal: a status, a stable code, a sentence, and per-field errors where they help. */
export interface ErrorAnswer {
  statusCode: number;
  code: string;
  message: string;
  errors?: { field: string; message: string }[];
}
