/**
 * The console page: one module per panel. It signs in at users-api like any client (the tokens stay in this page's
 * memory). Live data comes over Server-Sent Event streams — the notifier's public one (posts), the signed-in user's
 * own (their videos and emails) and, for admins, the console's /system/stream; nothing polls.
 */
import type { ConsoleSettings } from '../src/system/status';
import { deadLetterPanel } from './dead-letters.js';
import { el, must } from './dom.js';
import { openLiveStream, openMyStream } from './live.js';
import { postsPanel } from './posts.js';
import { registrationPanel } from './register.js';
import { Session } from './session.js';
import { signInPanel, whenSignedIn } from './sign-in.js';
import { systemPanel } from './system.js';
import { videoPanel } from './videos.js';

const settings = (await (await fetch('/config.json')).json()) as ConsoleSettings;

must<HTMLAnchorElement>('#api-docs').href = `${settings.apiUrl}/docs`;
if (settings.mailUrl) {
  must('#links').append(' · ', el('a', { href: settings.mailUrl, target: '_blank', rel: 'noopener' }, 'Mail catcher'));
}

const session = new Session(settings.apiUrl);
const on = openLiveStream(settings.notifierUrl);
const mine = openMyStream(settings.notifierUrl, session);
signInPanel(session);
registrationPanel(settings, session, mine);
videoPanel(settings, session, mine);
whenSignedIn(session, must('#video-sign-in'), must<HTMLFormElement>('#video-form'));
postsPanel(settings, session, on);
whenSignedIn(session, must('#post-sign-in'), must<HTMLFormElement>('#post-form'), must<HTMLFormElement>('#edit-form'));
const deadLetters = deadLetterPanel(session);
systemPanel(settings, session, (group) => deadLetters.show(group));
