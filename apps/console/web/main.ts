/**
 * The console page: one module per panel. Live data comes over two Server-Sent Event streams — the notifier's (what
 * happened to users, videos and posts) and the console's /system/stream (the system's state); nothing polls. The
 * page calls users-api at its own origin, as any client would.
 */
import type { ConsoleSettings } from '../src/system/status';
import { deadLetterPanel } from './dead-letters.js';
import { el, must } from './dom.js';
import { openLiveStream } from './live.js';
import { postsPanel } from './posts.js';
import { registrationPanel } from './register.js';
import { systemPanel } from './system.js';
import { videoPanel } from './videos.js';

const settings = (await (await fetch('/config.json')).json()) as ConsoleSettings;

must<HTMLAnchorElement>('#api-docs').href = `${settings.apiUrl}/docs`;
if (settings.mailUrl) {
  must('#links').append(' · ', el('a', { href: settings.mailUrl, target: '_blank', rel: 'noopener' }, 'Mail catcher'));
}

const on = openLiveStream(settings.notifierUrl);
const posts = postsPanel(settings, on);
registrationPanel(settings, on, (userId) => posts.setAuthor(userId));
videoPanel(settings, on);
const deadLetters = deadLetterPanel(settings);
systemPanel(settings, (group) => deadLetters.show(group));
