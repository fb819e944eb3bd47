import { must } from './dom.js';

export interface StreamedEvent<T> {
  id: string;
  type: string;
  data: T;
}

/** Events of each partition shown when the page loads: what happened just before it was opened. */
const RECENT_EVENTS = 10;

/** Subscribes to one event type of the notifier's stream. */
export type On = <T>(name: string, handle: (event: StreamedEvent<T>) => void) => void;

/** The notifier's live stream (what happened to users, videos and posts), with its state in the #live badge. */
export function openLiveStream(notifierUrl: string): On {
  const live = must('#live');
  const notifier = new EventSource(`${notifierUrl}/notifications/stream?recent=${RECENT_EVENTS}`);
  notifier.onopen = () => {
    live.textContent = 'live';
    live.className = 'badge ok';
  };
  notifier.onerror = () => {
    live.textContent = 'notifier unreachable, retrying…';
    live.className = 'badge error';
  };
  return (name, handle) =>
    notifier.addEventListener(name, (message) =>
      handle(JSON.parse((message as MessageEvent<string>).data) as Parameters<typeof handle>[0]),
    );
}
