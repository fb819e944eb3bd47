/**
 * The console page. Everything shown is built with textContent and attributes, never parsed as HTML: event data is
 * user input. Live data comes over two Server-Sent Event streams — the notifier's (what happened to users, videos and
 * posts) and users-api's /console/stream (the system's state); nothing polls.
 */

interface ConsoleSettings {
  notifierUrl: string;
  mailUrl: string | null;
  groups: string[];
  refreshMs: number;
  adminEnabled: boolean;
}

interface StreamedEvent<T> {
  id: string;
  type: string;
  data: T;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

interface SystemSnapshot {
  at: string;
  apps: { name: string; status: string; detail?: string }[];
  kafka: { reachable: boolean; error?: string };
  topics: { topic: string; messages: number; perSecond: number | null }[];
  groups: { group: string; lag: number | null; retryBacklog: number | null; deadLetters: number | null }[];
}

interface DeadLetterRow {
  partition: number;
  offset: string;
  eventId: string | null;
  eventType: string | null;
  reason: string | null;
  errorClass: string | null;
  errorMessage: string | null;
  attempts: number | null;
  failedAt: string | null;
}

type Child = Node | string | null | undefined;

/** An element with text and attributes: the one way this page makes DOM. */
function el(tag: string, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return element;
}

function must<T extends Element>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`the page lacks ${selector}`);
  return found;
}

const clock = () => new Date().toLocaleTimeString();

/** A form field's text ('' for a file or a missing field). */
function text(form: FormData, name: string): string {
  const value = form.get(name);
  return typeof value === 'string' ? value : '';
}

/** Children without the absent ones, for replaceChildren. */
const present = (...children: Child[]): (Node | string)[] =>
  children.filter((child): child is Node | string => child !== null && child !== undefined);

/** Adds a line at the top of a log list, keeping the last 50. */
function logLine(list: Element, kind: 'ok' | 'wait' | 'error' | 'info', ...content: Child[]): HTMLElement {
  const line = el('li', { class: kind }, el('time', {}, clock()), ' ', ...content);
  list.prepend(line);
  while (list.children.length > 50) list.lastElementChild?.remove();
  return line;
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const response = await fetch(path, init);
  const raw = await response.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
  } catch {
    parsed = { message: raw.slice(0, 200) };
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** The API's error shape as one line: the message, then each field's. */
function problem(answer: Answer): string {
  const fields = Array.isArray(answer.body.errors)
    ? (answer.body.errors as { field: string; message: string }[]).map((e) => `${e.field}: ${e.message}`)
    : [];
  const message = typeof answer.body.message === 'string' ? answer.body.message : '';
  return [`${answer.status} ${message}`.trim(), ...fields].join(' · ');
}

const settings = (await (await fetch('/console/config.json')).json()) as ConsoleSettings;

// ---------------------------------------------------------------- live streams
const live = must<HTMLElement>('#live');
const notifier = new EventSource(`${settings.notifierUrl}/notifications/stream`);
notifier.onopen = () => {
  live.textContent = 'live';
  live.className = 'badge ok';
};
notifier.onerror = () => {
  live.textContent = 'notifier unreachable, retrying…';
  live.className = 'badge error';
};
function on<T>(name: string, handle: (event: StreamedEvent<T>) => void): void {
  notifier.addEventListener(name, (message) =>
    handle(JSON.parse((message as MessageEvent<string>).data) as StreamedEvent<T>),
  );
}

if (settings.mailUrl) {
  must('#links').append(' · ', el('a', { href: settings.mailUrl, target: '_blank', rel: 'noopener' }, 'Mail catcher'));
}

// ---------------------------------------------------------------- register → welcome email
const registerLog = must('#register-log');
const waitingEmails = new Map<string, { line: HTMLElement; username: string }>();
/** email.sent notices that came before the registration's answer (the event can outrun the response). */
const sentEarly = new Map<string, string>();
const authorField = must<HTMLInputElement>('#post-form [name=authorId]');

must<HTMLFormElement>('#register-form').addEventListener('submit', (submitted) => {
  submitted.preventDefault();
  const form = submitted.target as HTMLFormElement;
  const fields = new FormData(form);
  const input = {
    email: text(fields, 'email'),
    username: text(fields, 'username'),
    password: text(fields, 'password'),
  };
  void call('POST', '/users', input).then((answer) => {
    if (answer.status !== 201) {
      logLine(registerLog, 'error', `refused: ${problem(answer)}`);
      return;
    }
    const id = String(answer.body.id);
    authorField.value = id;
    form.reset();
    const line = logLine(
      registerLog,
      'wait',
      'registered ',
      el('strong', {}, input.username),
      ` (${id}) · welcome email: on its way…`,
    );
    line.dataset.userId = id;
    waitingEmails.set(id, { line, username: input.username });
    const messageId = sentEarly.get(id);
    if (messageId !== undefined) showSent(id, messageId);
  });
});

on<{ userId: string; messageId: string }>('email.sent', (event) => {
  if (waitingEmails.has(event.data.userId)) showSent(event.data.userId, event.data.messageId);
  else {
    sentEarly.set(event.data.userId, event.data.messageId);
    if (sentEarly.size > 100) sentEarly.delete(sentEarly.keys().next().value as string);
  }
});

function showSent(userId: string, messageId: string): void {
  const waiting = waitingEmails.get(userId);
  if (!waiting) return;
  waitingEmails.delete(userId);
  sentEarly.delete(userId);
  waiting.line.className = 'ok sent';
  waiting.line.replaceChildren(
    ...present(
      el('time', {}, clock()),
      ' welcome email to ',
      el('strong', {}, waiting.username),
      ` sent · ${messageId}`,
      settings.mailUrl ? ' · ' : null,
      settings.mailUrl
        ? el('a', { href: settings.mailUrl, target: '_blank', rel: 'noopener' }, 'open the mail catcher')
        : null,
    ),
  );
}

// ---------------------------------------------------------------- video → work queue
const progress = must<HTMLProgressElement>('#video-progress');
const videoStatus = must<HTMLElement>('#video-status');
const videoResult = must<HTMLElement>('#video-result');
let currentVideo: string | undefined;

must<HTMLFormElement>('#video-form').addEventListener('submit', (submitted) => {
  submitted.preventDefault();
  const form = submitted.target as HTMLFormElement;
  progress.value = 0;
  videoResult.replaceChildren();
  videoStatus.textContent = 'uploading…';
  void call('POST', '/videos', new FormData(form)).then((answer) => {
    if (answer.status !== 202) {
      videoStatus.textContent = `refused: ${problem(answer)}`;
      return;
    }
    currentVideo = String(answer.body.id);
    videoStatus.textContent = `queued as ${currentVideo}`;
  });
});

on<{ videoId: string; progress: number; stage: string }>('video.progress', (event) => {
  if (event.data.videoId !== currentVideo) return;
  progress.value = Math.max(progress.value, event.data.progress);
  videoStatus.textContent = `${event.data.stage} · ${event.data.progress}%`;
});

/**
 * users-api applies the result from the same event in its own group, so it may not say `completed` yet when the
 * notifier's push arrives: ask it (once a second, for a while) before showing what it serves.
 */
async function whenCompleted(videoId: string): Promise<boolean> {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    const answer = await call('GET', `/videos/${encodeURIComponent(videoId)}`);
    if (answer.body.status === 'completed') return true;
    if (answer.body.status === 'failed') return false;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return false;
}

on<{ videoId: string; metadata: { durationSeconds: number; width: number; height: number; videoCodec: string } }>(
  'video.processed',
  (event) => {
    if (event.data.videoId !== currentVideo) return;
    const { durationSeconds, width, height, videoCodec } = event.data.metadata;
    progress.value = 100;
    videoStatus.textContent = `processed · ${width}×${height} ${videoCodec}, ${durationSeconds.toFixed(1)} s`;
    const videoId = event.data.videoId;
    void whenCompleted(videoId).then((completed) => {
      if (videoId !== currentVideo) return;
      if (!completed) {
        videoStatus.textContent = 'processed, but users-api has not recorded it yet';
        return;
      }
      videoStatus.textContent = `completed · ${width}×${height} ${videoCodec}, ${durationSeconds.toFixed(1)} s`;
      const id = encodeURIComponent(videoId);
      videoResult.replaceChildren(
        el('img', { id: 'video-thumbnail', src: `/videos/${id}/thumbnail`, alt: 'thumbnail' }),
        el('video', { id: 'video-preview', src: `/videos/${id}/preview`, controls: '', preload: 'metadata' }),
      );
    });
  },
);

on<{ videoId: string; reason: string }>('video.failed', (event) => {
  if (event.data.videoId !== currentVideo) return;
  videoStatus.textContent = `failed: ${event.data.reason}`;
});

// ---------------------------------------------------------------- posts → cache and notifications
const cacheLog = must('#cache-log');
const notifications = must('#notifications');
const editForm = must<HTMLFormElement>('#edit-form');
let currentPost: { id: string; version: number } | undefined;
let awaitedVersion: number | undefined;

/** Reads the post through the cache and logs where the answer came from; resolves with the version read. */
async function read(label: string, expected?: number): Promise<number | undefined> {
  if (!currentPost) return undefined;
  const answer = await call('GET', `/posts/${encodeURIComponent(currentPost.id)}`);
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
 * After an update: the cache-invalidator and the notifier consume the event independently, so the page may hear of
 * it first and still read the old entry. Reads once a second until the new version comes back (a miss, refilled),
 * then once more (a hit).
 */
async function readUntilFresh(version: number): Promise<void> {
  for (let attempt = 0; attempt < 15; attempt += 1) {
    const seen = await read('read after the update', version);
    if (seen !== undefined && seen >= version) {
      await read('read again', version);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

must<HTMLFormElement>('#post-form').addEventListener('submit', (submitted) => {
  submitted.preventDefault();
  const fields = new FormData(submitted.target as HTMLFormElement);
  const input = {
    authorId: text(fields, 'authorId'),
    title: text(fields, 'title'),
    body: text(fields, 'body'),
  };
  void call('POST', '/posts', input).then(async (answer) => {
    if (answer.status !== 201) {
      logLine(cacheLog, 'error', `refused: ${problem(answer)}`);
      return;
    }
    currentPost = { id: String(answer.body.id), version: Number(answer.body.version) };
    editForm.hidden = false;
    logLine(cacheLog, 'info', `created post ${currentPost.id}`);
    await read('first read');
    await read('second read');
  });
});

editForm.addEventListener('submit', (submitted) => {
  submitted.preventDefault();
  if (!currentPost) return;
  const title = text(new FormData(editForm), 'title');
  const post = currentPost;
  void call('PATCH', `/posts/${encodeURIComponent(post.id)}`, { title }, { 'if-match': `"${post.version}"` }).then(
    (answer) => {
      if (answer.status !== 200) {
        logLine(cacheLog, 'error', `refused: ${problem(answer)}`);
        return;
      }
      post.version = Number(answer.body.version);
      awaitedVersion = post.version;
      logLine(cacheLog, 'wait', `updated to version ${post.version}; waiting for the event to reach the cache…`);
    },
  );
});

function notify(verb: string) {
  return (event: StreamedEvent<{ postId: string; title?: string; version: number }>) => {
    const { postId, title, version } = event.data;
    logLine(notifications, 'info', `post ${verb}: `, title ? el('q', {}, title) : postId, ` (version ${version})`);
    if (verb === 'updated' && postId === currentPost?.id && version === awaitedVersion) {
      awaitedVersion = undefined;
      void readUntilFresh(version);
    }
  };
}
on('post.created', notify('created'));
on('post.updated', notify('updated'));
on('post.deleted', notify('deleted'));

// ---------------------------------------------------------------- system
const lagHistory = new Map<string, number[]>();
const HISTORY = Math.max(10, Math.round(180_000 / settings.refreshMs));

/** Lag over the last minutes as an SVG polyline: numbers only, nothing parsed. */
function sparkline(points: number[]): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 100 20');
  svg.setAttribute('class', 'spark');
  const max = Math.max(1, ...points);
  const line = document.createElementNS(ns, 'polyline');
  const step = points.length > 1 ? 100 / (points.length - 1) : 0;
  line.setAttribute(
    'points',
    points.map((v, i) => `${(i * step).toFixed(1)},${(19 - (v / max) * 18).toFixed(1)}`).join(' '),
  );
  svg.append(line);
  return svg;
}

const count = (value: number | null): string => (value === null ? '?' : String(value));

function renderSystem(snapshot: SystemSnapshot): void {
  const kafka = must('#kafka-status');
  kafka.textContent = snapshot.kafka.reachable
    ? `Kafka reachable · updated ${new Date(snapshot.at).toLocaleTimeString()}`
    : `Kafka unreachable: ${snapshot.kafka.error ?? ''}`;
  kafka.className = snapshot.kafka.reachable ? 'status ok' : 'status error';
  must('#apps tbody').replaceChildren(
    ...snapshot.apps.map((app) =>
      el(
        'tr',
        { 'data-app': app.name, class: app.status === 'ready' ? 'ok' : 'error' },
        el('td', {}, app.name),
        el('td', {}, app.status),
        el('td', {}, app.detail ?? ''),
      ),
    ),
  );
  must('#topics tbody').replaceChildren(
    ...snapshot.topics.map((topic) =>
      el(
        'tr',
        {},
        el('td', {}, topic.topic),
        el('td', {}, String(topic.messages)),
        el('td', {}, topic.perSecond === null ? '…' : topic.perSecond.toFixed(1)),
      ),
    ),
  );
  must('#groups tbody').replaceChildren(
    ...snapshot.groups.map((group) => {
      const points = lagHistory.get(group.group) ?? [];
      if (group.lag !== null) points.push(group.lag);
      while (points.length > HISTORY) points.shift();
      lagHistory.set(group.group, points);
      const show = el('button', { type: 'button', class: 'link' }, `${count(group.deadLetters)} · show`);
      show.addEventListener('click', () => void loadDeadLetters(group.group));
      return el(
        'tr',
        { 'data-group': group.group },
        el('td', {}, group.group),
        el('td', {}, count(group.lag)),
        el('td', {}, sparkline(points)),
        el('td', {}, count(group.retryBacklog)),
        el('td', { class: group.deadLetters ? 'error' : '' }, show),
      );
    }),
  );
}

const system = new EventSource('/console/stream');
system.addEventListener('system', (message) =>
  renderSystem(JSON.parse((message as MessageEvent<string>).data) as SystemSnapshot),
);

// ---------------------------------------------------------------- dead letters
const tokenStatus = must<HTMLElement>('#token-status');
const deadLetterView = must<HTMLElement>('#dead-letters');
let token = sessionStorage.getItem('console-admin-token') ?? '';
tokenStatus.textContent = settings.adminEnabled
  ? token
    ? 'token set for this tab'
    : 'replay and purge need the token'
  : 'replay and purge are off (CONSOLE_ADMIN_TOKEN is not set)';

must<HTMLFormElement>('#token-form').addEventListener('submit', (submitted) => {
  submitted.preventDefault();
  token = text(new FormData(submitted.target as HTMLFormElement), 'token');
  sessionStorage.setItem('console-admin-token', token);
  tokenStatus.textContent = token ? 'token set for this tab' : 'token cleared';
});

const admin = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

async function loadDeadLetters(group: string, note?: string): Promise<void> {
  deadLetterView.replaceChildren(el('p', { class: 'status' }, `reading ${group}'s dead letters…`));
  const answer = await call('GET', `/console/dead-letters?group=${encodeURIComponent(group)}`);
  if (answer.status !== 200) {
    deadLetterView.replaceChildren(el('p', { class: 'status error' }, problem(answer)));
    return;
  }
  const letters = answer.body.letters as DeadLetterRow[];
  const outcome = el('p', { id: 'dead-letter-outcome', class: 'status' }, note ?? '');
  const act = (path: string, body: unknown, done: (answer: Answer) => string) => {
    void call('POST', path, body, admin()).then((result) => {
      if (result.status === 200) void loadDeadLetters(group, done(result));
      else {
        outcome.textContent = `refused: ${problem(result)}`;
        outcome.className = 'status error';
      }
    });
  };
  const rows = letters.map((letter) => {
    const replay = el('button', { type: 'button' }, 'Replay');
    replay.addEventListener('click', () =>
      act(
        '/console/dead-letters/replay',
        { group, id: letter.eventId ?? undefined },
        (r) => `replayed ${letter.eventId ?? ''}; ${String(r.body.removed)} left the dead-letter topic`,
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
    act(
      '/console/dead-letters/purge',
      { group, through: answer.body.through },
      (r) => `purged ${String(r.body.deleted)}`,
    ),
  );
  deadLetterView.replaceChildren(
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

export {};
