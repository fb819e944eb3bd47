import { el, must, text } from './dom.js';
import { problem } from './http.js';
import type { Session } from './session.js';

/** Sign in → who is signed in and their role (GET /users/me), and sign out. */
export function signInPanel(session: Session): void {
  const form = must<HTMLFormElement>('#sign-in-form');
  const status = must('#account-status');
  const signOut = must<HTMLButtonElement>('#sign-out');

  session.subscribe((account) => {
    form.hidden = account !== undefined;
    signOut.hidden = account === undefined;
    status.className = account ? 'status ok' : 'status';
    status.replaceChildren(
      ...(account
        ? [
            'signed in as ',
            el('strong', { id: 'account-name' }, account.username),
            ` (${account.email}) · role `,
            el('strong', { id: 'account-role' }, account.role),
          ]
        : ['not signed in: register below, or sign in']),
    );
  });

  form.addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    const fields = new FormData(form);
    status.textContent = 'signing in…';
    void session.signIn(text(fields, 'email'), text(fields, 'password')).then((refused) => {
      if (!refused) {
        form.reset();
        return;
      }
      status.textContent = `refused: ${problem(refused)}`;
      status.className = 'status error';
    });
  });

  signOut.addEventListener('click', () => void session.signOut());
}

/** The forms that act as the signed-in user: usable once someone is, with a note saying so until then. */
export function whenSignedIn(session: Session, note: HTMLElement, ...forms: HTMLFormElement[]): void {
  session.subscribe((account) => {
    for (const form of forms) {
      for (const button of form.querySelectorAll('button')) button.disabled = account === undefined;
    }
    note.hidden = account !== undefined;
  });
  // Before anyone signs in (subscribe calls at once only when someone is).
  for (const form of forms) for (const button of form.querySelectorAll('button')) button.disabled = true;
}
