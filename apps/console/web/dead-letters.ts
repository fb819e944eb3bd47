import type { ConsoleSettings, DeadLetterListing, PurgeAnswer, ReplayAnswer } from '../src/system/status';
import { count, el, must, present, text } from './dom.js';
import { type Answer, call, problem } from './http.js';

const TOKEN_KEY = 'console-admin-token';

/** One group's dead letters, with replay and purge behind the admin token (kept for this tab only). */
export function deadLetterPanel(settings: ConsoleSettings): { show(group: string): void } {
  const tokenStatus = must('#token-status');
  const view = must('#dead-letters');
  let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
  tokenStatus.textContent = settings.adminEnabled
    ? token
      ? 'token set for this tab'
      : 'replay and purge need the token'
    : 'replay and purge are off (CONSOLE_ADMIN_TOKEN is not set)';

  must<HTMLFormElement>('#token-form').addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    token = text(new FormData(submitted.target as HTMLFormElement), 'token');
    sessionStorage.setItem(TOKEN_KEY, token);
    tokenStatus.textContent = token ? 'token set for this tab' : 'token cleared';
  });

  const admin = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

  async function load(group: string, note?: string): Promise<void> {
    view.replaceChildren(el('p', { class: 'status' }, `reading ${group}'s dead letters…`));
    const answer = await call<DeadLetterListing>('GET', `/dead-letters?group=${encodeURIComponent(group)}`);
    if (answer.status !== 200) {
      view.replaceChildren(el('p', { class: 'status error' }, problem(answer)));
      return;
    }
    const { letters, through } = answer.body;
    const outcome = el('p', { id: 'dead-letter-outcome', class: 'status' }, note ?? '');
    const act = <T>(path: string, body: unknown, done: (answer: Answer<T>) => string) => {
      void call<T>('POST', path, body, admin()).then((result) => {
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

  return { show: (group) => void load(group) };
}
