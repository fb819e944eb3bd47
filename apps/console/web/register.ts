import type { ConsoleSettings } from '../src/system/status';
import { clock, el, logLine, must, present, text } from './dom.js';
import { call, problem } from './http.js';
import type { On } from './live.js';
import type { Session } from './session.js';

/**
 * Register → signed in → welcome email: the registration's answer, a sign-in with the same credentials, then
 * email-service's email.sent over the new user's own stream.
 */
export function registrationPanel(settings: ConsoleSettings, session: Session, mine: On): void {
  const log = must('#register-log');
  const waiting = new Map<string, { line: HTMLElement; username: string }>();
  /** email.sent notices that came before the registration's answer (the event can outrun the response). */
  const sentEarly = new Map<string, string>();

  function showSent(userId: string, messageId: string): void {
    const entry = waiting.get(userId);
    if (!entry) return;
    waiting.delete(userId);
    sentEarly.delete(userId);
    entry.line.className = 'ok sent';
    entry.line.replaceChildren(
      ...present(
        el('time', {}, clock()),
        ' welcome email to ',
        el('strong', {}, entry.username),
        ` sent · ${messageId}`,
        settings.mailUrl ? ' · ' : null,
        settings.mailUrl
          ? el('a', { href: settings.mailUrl, target: '_blank', rel: 'noopener' }, 'open the mail catcher')
          : null,
      ),
    );
  }

  must<HTMLFormElement>('#register-form').addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    const form = submitted.target as HTMLFormElement;
    const fields = new FormData(form);
    const input = {
      email: text(fields, 'email'),
      username: text(fields, 'username'),
      password: text(fields, 'password'),
    };
    void call<{ id: string }>('POST', `${settings.apiUrl}/users`, input).then(async (answer) => {
      if (answer.status !== 201) {
        logLine(log, 'error', `refused: ${problem(answer)}`);
        return;
      }
      const id = String(answer.body.id);
      form.reset();
      const line = logLine(
        log,
        'wait',
        'registered ',
        el('strong', {}, input.username),
        ` (${id}) · welcome email: on its way…`,
      );
      line.dataset.userId = id;
      waiting.set(id, { line, username: input.username });
      const refused = await session.signIn(input.email, input.password);
      if (refused) logLine(log, 'error', `registered, but the sign-in was refused: ${problem(refused)}`);
      const messageId = sentEarly.get(id);
      if (messageId !== undefined) showSent(id, messageId);
    });
  });

  mine<{ userId: string; messageId: string }>('email.sent', (event) => {
    if (waiting.has(event.data.userId)) showSent(event.data.userId, event.data.messageId);
    else {
      sentEarly.set(event.data.userId, event.data.messageId);
      if (sentEarly.size > 100) sentEarly.delete(sentEarly.keys().next().value as string);
    }
  });
}
