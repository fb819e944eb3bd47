import { must, pause } from './dom.js';
import { call } from './http.js';
import type { Session } from './session.js';

export interface StreamedEvent<T> {
  id: string;
  type: string;
  data: T;
}

/** Events of each partition shown when the page loads: what happened just before it was opened. */
const RECENT_EVENTS = 10;

/** Subscribes to one event type of a stream. */
export type On = <T>(name: string, handle: (event: StreamedEvent<T>) => void) => void;

function badge(selector: string, text: string, kind: 'ok' | 'error' | ''): void {
  const element = must(selector);
  element.textContent = text;
  element.className = `badge ${kind}`.trim();
}

const parsed = <T>(message: Event): StreamedEvent<T> =>
  JSON.parse((message as MessageEvent<string>).data) as StreamedEvent<T>;

/** The notifier's public stream (what happens to posts, for everyone), with its state in the #live badge. */
export function openLiveStream(notifierUrl: string): On {
  const notifier = new EventSource(`${notifierUrl}/notifications/stream?recent=${RECENT_EVENTS}`);
  notifier.onopen = () => badge('#live', 'live', 'ok');
  notifier.onerror = () => badge('#live', 'notifier unreachable, retrying…', 'error');
  return (name, handle) => notifier.addEventListener(name, (message) => handle(parsed(message)));
}

/**
 * The signed-in user's own stream at the notifier (their videos' progress and results, their emails sent): POST
 * /notifications/session with the access token sets the notifier's HttpOnly cookie, which the EventSource then
 * carries (it cannot send a header). Posted again after every refresh, so the cookie lasts as long as the current
 * token; closed at sign-out (DELETE /notifications/session). Its state is the #mine badge.
 */
export function openMyStream(notifierUrl: string, session: Session): On {
  const handlers: [string, (message: Event) => void][] = [];
  let stream: EventSource | undefined;
  let generation = 0;
  /** The last DELETE /notifications/session: the next sign-in's cookie must not be cleared by its late answer. */
  let closing: Promise<unknown> = Promise.resolve();

  async function connect(): Promise<void> {
    const mine = ++generation;
    await closing;
    const answer = await session
      .call('POST', `${notifierUrl}/notifications/session`, undefined, {}, 'include')
      .catch(() => undefined);
    if (mine !== generation) return;
    if (answer?.status !== 200 && answer?.status !== 204) {
      badge('#mine', `my events: ${answer ? `refused (${answer.status})` : 'notifier unreachable'}`, 'error');
      return;
    }
    if (stream && stream.readyState !== EventSource.CLOSED) return; // the open stream reads the new cookie next time
    // recent=: an email.sent that came before the stream opened (registration signs in right after) is still shown.
    stream = new EventSource(`${notifierUrl}/notifications/me/stream?recent=${RECENT_EVENTS}`, {
      withCredentials: true,
    });
    for (const [name, handle] of handlers) stream.addEventListener(name, handle);
    stream.onopen = () => badge('#mine', 'my events: live', 'ok');
    stream.onerror = () => {
      badge('#mine', 'my events: reconnecting…', 'error');
      // Refused at a reconnect (the cookie's token expired): a new cookie, then a new stream.
      if (stream?.readyState === EventSource.CLOSED && session.account) {
        stream = undefined;
        void pause(3000).then(() => (session.account ? connect() : undefined));
      }
    };
  }

  session.subscribe((account) => {
    if (account) {
      void connect();
      return;
    }
    generation += 1;
    const wasOpen = stream !== undefined;
    stream?.close();
    stream = undefined;
    badge('#mine', 'my events: sign in', '');
    if (wasOpen) {
      closing = call('DELETE', `${notifierUrl}/notifications/session`, undefined, {}, 'include').catch(() => undefined);
    }
  });

  return (name, handle) => {
    const listener = (message: Event) => handle(parsed(message));
    handlers.push([name, listener]);
    stream?.addEventListener(name, listener);
  };
}
