import type { ConsoleSettings } from '../src/system/status';
import { el, logLine, must, pause, text } from './dom.js';
import { call, problem } from './http.js';
import type { On, StreamedEvent } from './live.js';
import type { Session } from './session.js';

interface PostAnswer {
  id: string;
  version: number;
}

/**
 * Posts → cache and live notifications: written as the signed-in user (users-api takes the author from the token),
 * read through users-api's cache, and every page's notifications from the public stream.
 */
export function postsPanel(settings: ConsoleSettings, session: Session, on: On): void {
  const cacheLog = must('#cache-log');
  const notifications = must('#notifications');
  const editForm = must<HTMLFormElement>('#edit-form');
  const postUrl = (id: string) => `${settings.apiUrl}/posts/${encodeURIComponent(id)}`;
  let current: PostAnswer | undefined;
  let awaitedVersion: number | undefined;

  /** Reads the post through the cache and logs where the answer came from; resolves with the version read. */
  async function read(label: string, expected?: number): Promise<number | undefined> {
    if (!current) return undefined;
    const answer = await call<Partial<PostAnswer>>('GET', postUrl(current.id));
    const cache = answer.headers.get('x-cache') ?? '?';
    const version = typeof answer.body.version === 'number' ? answer.body.version : undefined;
    const stale = expected !== undefined && version !== undefined && version < expected;
    logLine(
      cacheLog,
      answer.status !== 200 ? 'error' : stale ? 'wait' : 'ok',
      `${label}: X-Cache ${cache}, version ${String(version)}`,
      stale ? ' (stale: the invalidator has not handled the update yet)' : '',
    );
    return version;
  }

  /**
   * After an update: the cache-invalidator and the notifier consume the event independently, so the page may hear
   * of it first and still read the old entry. Reads once a second until the new version comes back (a miss,
   * refilled), then once more (a hit).
   */
  async function readUntilFresh(version: number): Promise<void> {
    for (let attempt = 0; attempt < 15; attempt += 1) {
      const seen = await read('read after the update', version);
      if (seen !== undefined && seen >= version) {
        await read('read again', version);
        return;
      }
      await pause(1000);
    }
  }

  must<HTMLFormElement>('#post-form').addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    const fields = new FormData(submitted.target as HTMLFormElement);
    const input = { title: text(fields, 'title'), body: text(fields, 'body') };
    void session.call<PostAnswer>('POST', `${settings.apiUrl}/posts`, input).then(async (answer) => {
      if (answer.status !== 201) {
        logLine(cacheLog, 'error', `refused: ${problem(answer)}`);
        return;
      }
      current = { id: String(answer.body.id), version: Number(answer.body.version) };
      editForm.hidden = false;
      logLine(cacheLog, 'info', `created post ${current.id}`);
      await read('first read');
      await read('second read');
    });
  });

  editForm.addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    if (!current) return;
    const post = current;
    const title = text(new FormData(editForm), 'title');
    void session
      .call<PostAnswer>('PATCH', postUrl(post.id), { title }, { 'if-match': `"${post.version}"` })
      .then((answer) => {
        if (answer.status !== 200) {
          logLine(cacheLog, 'error', `refused: ${problem(answer)}`);
          return;
        }
        post.version = Number(answer.body.version);
        awaitedVersion = post.version;
        logLine(cacheLog, 'wait', `updated to version ${post.version}; waiting for the event to reach the cache…`);
      });
  });

  const notify = (verb: string) => (event: StreamedEvent<{ postId: string; title?: string; version: number }>) => {
    const { postId, title, version } = event.data;
    logLine(notifications, 'info', `post ${verb}: `, title ? el('q', {}, title) : postId, ` (version ${version})`);
    if (verb === 'updated' && postId === current?.id && version === awaitedVersion) {
      awaitedVersion = undefined;
      void readUntilFresh(version);
    }
  };
  on('post.created', notify('created'));
  on('post.updated', notify('updated'));
  on('post.deleted', notify('deleted'));
}
