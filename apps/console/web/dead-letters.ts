import type { DeadLetterListing, PurgeAnswer, ReplayAnswer } from '../src/system/status';
import { count, el, must, present } from './dom.js';
import { type Answer, problem } from './http.js';
import type { Session } from './session.js';

/** One group's dead letters, listed, replayed and purged as the signed-in admin. */
export function deadLetterPanel(session: Session): { show(group: string | undefined): void } {
  const view = must('#dead-letters');
  const idle = () => view.replaceChildren(el('p', { class: 'status' }, "Pick a group's dead letters above."));

  async function load(group: string, note?: string): Promise<void> {
    view.replaceChildren(el('p', { class: 'status' }, `reading ${group}'s dead letters…`));
    const answer = await session.call<DeadLetterListing>('GET', `/dead-letters?group=${encodeURIComponent(group)}`);
    if (answer.status !== 200) {
      view.replaceChildren(el('p', { class: 'status error' }, problem(answer)));
      return;
    }
    const { letters, through } = answer.body;
    const outcome = el('p', { id: 'dead-letter-outcome', class: 'status' }, note ?? '');
    const act = <T>(path: string, body: unknown, done: (answer: Answer<T>) => string) => {
      void session.call<T>('POST', path, body).then((result) => {
        if (result.status === 200) void load(group, done(result));
        else {
          outcome.textContent = `refused: ${problem(result)}`;
          outcome.className = 'status error';
        }
      });
    };
    const rows = letters.map((letter) => {
      const replay = el('button', { type: 'button' }, 'Replay');
      replay.addEventListener('click', () =>
        act<ReplayAnswer>(
          '/dead-letters/replay',
          { group, id: letter.eventId ?? undefined },
          (r) => `replayed ${letter.eventId ?? ''}; ${r.body.removed} left the dead-letter topic`,
        ),
      );
      return el(
        'tr',
        { 'data-event-id': letter.eventId ?? '' },
        el('td', {}, letter.eventType ?? '(unknown)'),
        el('td', {}, letter.reason ?? ''),
        el('td', {}, `${letter.errorClass ?? ''}: ${letter.errorMessage ?? ''}`),
        el('td', {}, count(letter.attempts)),
        el('td', {}, letter.failedAt ? new Date(letter.failedAt).toLocaleString() : ''),
        el('td', {}, letter.eventId ? replay : null),
      );
    });
    const purge = el('button', { type: 'button' }, 'Purge these');
    purge.addEventListener('click', () =>
      act<PurgeAnswer>('/dead-letters/purge', { group, through }, (r) => `purged ${r.body.deleted}`),
    );
    view.replaceChildren(
      ...present(
        el('h4', {}, `${group}: ${letters.length} dead letter(s)`),
        outcome,
        letters.length === 0
          ? el('p', { class: 'status' }, 'none')
          : el(
              'table',
              { id: 'dead-letter-table' },
              el(
                'thead',
                {},
                el('tr', {}, ...['Type', 'Reason', 'Error', 'Attempts', 'When', ''].map((h) => el('th', {}, h))),
              ),
              el('tbody', {}, ...rows),
            ),
        letters.length > 0 ? purge : null,
      ),
    );
  }

  return { show: (group) => (group === undefined ? idle() : void load(group)) };
}
