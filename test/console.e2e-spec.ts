/// <reference lib="dom" />
// Code passed to page.evaluate and waitForFunction runs in the page, with its DOM.
import { randomUUID } from 'node:crypto';
import type { Browser, HTTPRequest, Page } from 'puppeteer-core';
import { Account, grantAdmin, signIn, signUp } from './support/accounts';
import { launchBrowser, screenshot, watchPage, PageWatch } from './support/browser';
import { RunningSystem } from './support/system';
import { makeVideo, removeTestFiles } from './support/videos';
import { waitFor } from './support/wait';

/** Access tokens as short as users-api allows: the page refreshes its own a few times during the suite. */
const TOKEN_SECONDS = 30;

/**
 * (waitForFunction polls on a timer: its default, animation frames, does not run in a page that is not in front.)
 *
 * The console (apps/console) in headless Chromium against all six apps as processes. The page signs in at users-api
 * like any client; each scenario is tried through its forms as the signed-in user and watched arriving over the live
 * streams; the System view and the dead-letter tools open to an admin only. Screenshots go to
 * .run/screenshots/console-*.png.
 */
describe('web console in a real browser', () => {
  const system = new RunningSystem();
  let browser: Browser;
  const pages: { page: Page; watch: PageWatch }[] = [];
  let page: Page;
  let admin: Account;

  async function openConsole(): Promise<{ page: Page; watch: PageWatch }> {
    const opened = await browser.newPage();
    await opened.setViewport({ width: 1280, height: 1000 });
    // The page's own origin, and the two it calls as any client would: users-api and the notifier.
    const watch = watchPage(opened, system.consoleUrl, [system.apiUrl, system.notifierUrl]);
    const response = await opened.goto(`${system.consoleUrl}/`, { waitUntil: 'domcontentloaded' });
    // The second page may be answered from the browser's cache after revalidation.
    expect([200, 304]).toContain(response?.status());
    await opened.waitForFunction(() => document.querySelector('#live')?.textContent === 'live', {
      timeout: 30_000,
      polling: 250,
    });
    return { page: opened, watch };
  }

  /** Replaces a field's value by typing, as a user would. */
  async function fill(on: Page, selector: string, value: string): Promise<void> {
    await on.$eval(selector, (input) => ((input as HTMLInputElement).value = ''));
    await on.type(selector, value);
  }

  const textOf = (selector: string, on: Page = page) =>
    on.$eval(selector, (element) => element.textContent ?? '').catch(() => '');

  const visible = (selector: string, on: Page = page) =>
    on.$eval(selector, (element) => !(element as HTMLElement).hidden && getComputedStyle(element).display !== 'none');

  /** Signs in through the panel (signing out whoever was) and waits until the page shows who. */
  async function signInAs(on: Page, account: { email: string; username: string; password: string }): Promise<void> {
    if (await visible('#sign-out', on)) await signOutOf(on);
    await fill(on, '#sign-in-form [name=email]', account.email);
    await fill(on, '#sign-in-form [name=password]', account.password);
    await on.click('#sign-in-form button');
    await on.waitForFunction(
      (username) => document.querySelector('#account-name')?.textContent === username,
      { timeout: 30_000, polling: 250 },
      account.username,
    );
  }

  async function signOutOf(on: Page): Promise<void> {
    await on.click('#sign-out');
    await on.waitForFunction(() => document.querySelector('#account-name') === null, { timeout: 30_000, polling: 250 });
  }

  /** The system view is open, or the panel says why not. */
  const systemShown = (on: Page = page) =>
    on.waitForFunction(
      () =>
        !document.querySelector<HTMLElement>('#system-view')!.hidden &&
        document.querySelector('#groups tr[data-group]'),
      { timeout: 30_000, polling: 250 },
    );

  /** A fresh admin access token for calls from the test (the account's first predates its role). */
  const adminToken = async () => (await signIn(system.apiUrl, admin.email, admin.password)).accessToken;

  beforeAll(async () => {
    await system.start({
      console: { CONSOLE_REFRESH_MS: '1000' },
      usersApi: { AUTH_ACCESS_TOKEN_TTL_SECONDS: String(TOKEN_SECONDS) },
    });
    admin = await signUp(system.apiUrl, `admin${system.suffix}`);
    await grantAdmin(admin.email);
    browser = await launchBrowser();
    pages.push(await openConsole(), await openConsole());
    page = pages[0].page;
  });

  afterAll(async () => {
    await browser?.close();
    await system.stop();
    removeTestFiles(system.suffix);
  });

  // Input goes to the page in front; the other page keeps receiving events in the background.
  beforeEach(async () => {
    await page.bringToFront();
  });

  afterEach(() => {
    for (const { watch } of pages) {
      expect(watch.errors).toEqual([]);
      expect(watch.foreignRequests).toEqual([]);
      // Refusals the tests ask for (400, 401, 403) are fine; a missing file or a server error is not.
      expect(watch.failedResponses.filter((line) => !/^40[013] /.test(line))).toEqual([]);
      // Each test answers for its own requests.
      watch.errors.length = 0;
      watch.foreignRequests.length = 0;
      watch.failedResponses.length = 0;
    }
  });

  it('signed out, the System view asks for an admin, and its data answers 401 without a token', async () => {
    expect(await visible('#system-view')).toBe(false);
    expect(await textOf('#system-gate')).toBe('Sign in as an admin to see the system.');
    expect(await textOf('#account-status')).toContain('not signed in');
    // Forms that act as a user wait for a sign-in.
    expect(await page.$eval('#video-form button', (b) => b.disabled)).toBe(true);
    expect(await page.$eval('#post-form button', (b) => b.disabled)).toBe(true);
    for (const path of ['/system', '/system/stream', `/dead-letters?group=${system.groups.email}`]) {
      const refused = await fetch(`${system.consoleUrl}${path}`);
      expect([path, refused.status]).toEqual([path, 401]);
    }
    await screenshot(page, 'console-signed-out');
  });

  it('an admin signs in: name and role show, the tables read until the first snapshot, then the system', async () => {
    const opened = await browser.newPage();
    const watch = watchPage(opened, system.consoleUrl, [system.apiUrl, system.notifierUrl]);
    // The system stream held back, as a slow broker round or a buffering proxy would: the page has no snapshot yet.
    await opened.setRequestInterception(true);
    const held: (() => Promise<void>)[] = [];
    opened.on('request', (request) => {
      if (new URL(request.url()).pathname === '/system/stream') held.push(() => request.continue());
      else void request.continue();
    });
    try {
      await opened.goto(`${system.consoleUrl}/`, { waitUntil: 'domcontentloaded' });
      await signInAs(opened, admin);
      expect(await textOf('#account-role', opened)).toBe('admin');
      await waitFor('the page to open the system stream', () => held.length > 0);
      for (const table of ['#apps', '#topics', '#groups']) {
        expect(await textOf(`${table} tbody`, opened)).toContain('reading');
      }
      expect(await textOf('#kafka-status', opened)).toContain('reading');
      await held[0]();
      await opened.waitForFunction(() => document.querySelectorAll('#apps tbody tr[data-app]').length === 6, {
        timeout: 30_000,
        polling: 250,
      });
      expect(await textOf('#apps tbody', opened)).not.toContain('reading');
      expect(await textOf('#kafka-status', opened)).toMatch(/^Kafka reachable/);
      // The tokens stay in the page's memory: nothing in storage, and the stream's cookie is not the page's to read.
      expect(await opened.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie])).toEqual([
        0,
        0,
        '',
      ]);
      const cookies = await opened.cookies(system.consoleUrl + '/system/stream');
      expect(cookies.find((c) => c.name === 'console_session')).toMatchObject({
        httpOnly: true,
        sameSite: 'Strict',
        path: '/system/stream',
      });
      expect(watch.errors).toEqual([]);
    } finally {
      await opened.close();
    }
  });

  it('register: signs in as the new user; the welcome email shows as sent once sent; HTML in a field stays text', async () => {
    const name = `console${randomUUID().slice(0, 8)}`;
    await fill(page, '#register-form [name=email]', `${name}@example.com`);
    await fill(page, '#register-form [name=username]', name);
    await fill(page, '#register-form [name=password]', 'a long console password');
    await page.click('#register-form button');
    // Registered, then signed in with the same credentials: the page shows the new user.
    await page.waitForFunction(
      (username) => document.querySelector('#account-name')?.textContent === username,
      { timeout: 30_000, polling: 250 },
      name,
    );
    expect(await textOf('#account-role')).toBe('user');
    // The welcome email arrives over the user's own stream.
    await page.waitForFunction(
      (username) =>
        [...document.querySelectorAll('#register-log li.sent')].some((li) => li.textContent?.includes(username)),
      { timeout: 30_000, polling: 250 },
      name,
    );
    expect(system.smtp.to(`${name}@example.com`)).toHaveLength(1);

    // Refused input is reported per field, and nothing the user typed is parsed as HTML.
    await fill(page, '#register-form [name=email]', `html${name}@example.com`);
    await fill(page, '#register-form [name=username]', '<img src=x onerror="window.pwned=1">');
    await fill(page, '#register-form [name=password]', 'a long console password');
    await page.click('#register-form button');
    await page.waitForFunction(
      () => document.querySelector('#register-log li.error')?.textContent?.includes('username'),
      { timeout: 30_000, polling: 250 },
    );
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.$$('#register-log img')).toHaveLength(0);
    await screenshot(page, 'console-register');
  });

  it('video: uploaded as the signed-in user; their progress bar reaches 100%, the thumbnail loads, the preview plays', async () => {
    // Signed in by the registration above, or here.
    if (!(await visible('#sign-out'))) await signInAs(page, await signUp(system.apiUrl));
    const uploads: HTTPRequest[] = [];
    const seen = (request: HTTPRequest) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/videos') uploads.push(request);
    };
    page.on('request', seen);
    const clip = await makeVideo(`console-${system.suffix}`, { seconds: 3 });
    const input = await page.waitForSelector('#video-form input[type=file]');
    await input!.uploadFile(clip.path);
    await page.click('#video-form button');
    await page.waitForFunction(() => document.querySelector<HTMLProgressElement>('#video-progress')?.value === 100, {
      timeout: 90_000,
      polling: 250,
    });
    await page.waitForFunction(
      () => {
        const image = document.querySelector<HTMLImageElement>('#video-thumbnail');
        return image !== null && image.complete && image.naturalWidth > 0;
      },
      { timeout: 30_000, polling: 250 },
    );
    // HAVE_METADATA: the browser fetched and understood the MP4 (through a range request).
    await page.waitForFunction(
      () => (document.querySelector<HTMLVideoElement>('#video-preview')?.readyState ?? 0) >= 1,
      { timeout: 30_000, polling: 250 },
    );
    expect(await textOf('#video-status')).toMatch(/^completed/);
    page.off('request', seen);
    expect(uploads.map((request) => request.headers().authorization)).toEqual([expect.stringMatching(/^Bearer /)]);
    await screenshot(page, 'console-video');
  });

  it('posts: created as the signed-in user, shown in every page as text, even signed out; an edit refreshes the cache', async () => {
    const [first, second] = pages.map((p) => p.page);
    if (!(await visible('#sign-out', first))) await signInAs(first, await signUp(system.apiUrl));
    expect(await visible('#sign-out', second)).toBe(false);
    const writes: HTTPRequest[] = [];
    const seen = (request: HTTPRequest) => {
      if (new URL(request.url()).pathname.startsWith('/posts') && request.method() !== 'GET') writes.push(request);
    };
    first.on('request', seen);
    const title = `<img src=x onerror="window.pwned=1"> ${randomUUID().slice(0, 6)}`;
    // No post yet in this page: nothing to edit, so no edit form.
    for (const each of [first, second]) {
      expect(await each.$eval('#edit-form', (form) => getComputedStyle(form).display)).toBe('none');
    }
    // No author field: users-api takes the author from the token.
    expect(await first.$$('#post-form [name=authorId]')).toHaveLength(0);
    await first.bringToFront();
    await fill(first, '#post-form [name=title]', title);
    await fill(first, '#post-form [name=body]', 'written in the console');
    await first.click('#post-form button');
    await waitFor('the post to be sent', () => writes.some((request) => request.method() === 'POST'));
    const created = writes.find((request) => request.method() === 'POST' && request.headers().authorization);
    expect(created?.headers().authorization).toMatch(/^Bearer /);
    expect(JSON.parse(created?.postData() ?? '{}')).not.toHaveProperty('authorId');
    for (const each of [first, second]) {
      await each.waitForFunction(
        (expected) =>
          [...document.querySelectorAll('#notifications li')].some(
            (li) => li.textContent?.includes('post created') && li.querySelector('q')?.textContent === expected,
          ),
        { timeout: 30_000, polling: 250 },
        title,
      );
      expect(await each.$$('#notifications img')).toHaveLength(0);
      expect(await each.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    }

    // A page opened afterwards shows it too: the stream starts with the recent events.
    const late = await openConsole();
    await late.page.waitForFunction(
      (expected) =>
        [...document.querySelectorAll('#notifications li')].some(
          (li) => li.querySelector('q')?.textContent === expected,
        ),
      { timeout: 30_000, polling: 250 },
      title,
    );
    expect(late.watch.errors).toEqual([]);
    await late.page.close();
    await first.bringToFront();

    await fill(first, '#edit-form [name=title]', 'edited in the console');
    await first.click('#edit-form button');
    await first.waitForFunction(
      () => [...document.querySelectorAll('#cache-log li')].some((li) => li.textContent?.includes('read again')),
      { timeout: 30_000, polling: 250 },
    );
    const reads = await first.$$eval('#cache-log li', (items) => items.map((li) => li.textContent ?? ''));
    // Newest first. Once version 2 was read (refilled after the invalidation), the next read is a hit of it, and no
    // read after the first of version 2 goes back to version 1.
    expect(reads[0]).toMatch(/read again: X-Cache hit, version 2/);
    const firstFresh = reads.findLastIndex((line) => /read after the update: .*version 2/.test(line));
    expect(firstFresh).toBeGreaterThan(0);
    expect(reads.slice(0, firstFresh).filter((line) => /version 1/.test(line))).toEqual([]);
    first.off('request', seen);
    expect(writes.filter((r) => r.method() === 'PATCH').map((r) => r.headers().authorization)).toEqual([
      expect.stringMatching(/^Bearer /),
    ]);
    await screenshot(first, 'console-posts');
  });

  it('a user who is not an admin: the page says the system needs an admin, and the system data and replay answer 403', async () => {
    const user = await signUp(system.apiUrl);
    await signInAs(page, user);
    await page.waitForFunction(() => document.querySelector('#system-gate')?.textContent?.includes('403'), {
      timeout: 30_000,
      polling: 250,
    });
    const gate = await textOf('#system-gate');
    expect(gate).toMatch(/^Sign in as an admin to see the system/);
    expect(gate).toContain(`${user.username} has the role user`);
    expect(await visible('#system-view')).toBe(false);
    for (const [method, path, body] of [
      ['GET', '/system', undefined],
      ['GET', `/dead-letters?group=${system.groups.email}`, undefined],
      ['POST', '/dead-letters/replay', { group: system.groups.email }],
      ['POST', '/dead-letters/purge', { group: system.groups.email, through: '0/0' }],
    ] as const) {
      const refused = await fetch(`${system.consoleUrl}${path}`, {
        method,
        headers: { ...user.auth, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      expect([path, refused.status, ((await refused.json()) as { code: string }).code]).toEqual([
        path,
        403,
        'AUTH.FORBIDDEN',
      ]);
    }
    await screenshot(page, 'console-not-admin');
  });

  it('a role granted while signed in reaches the page at its next refresh, and the System view opens', async () => {
    const user = await signUp(system.apiUrl);
    await signInAs(page, user);
    await page.waitForFunction(() => document.querySelector('#system-gate')?.textContent?.includes('403'), {
      timeout: 30_000,
      polling: 250,
    });
    const refreshed = page.waitForResponse(
      (response) => new URL(response.url()).pathname === '/sessions/refresh' && response.status() === 200,
      { timeout: TOKEN_SECONDS * 1000 + 10_000 },
    );
    await grantAdmin(user.email);
    // The page refreshes its token before it expires; the next one carries the role.
    await refreshed;
    await page.waitForFunction(() => document.querySelector('#account-role')?.textContent === 'admin', {
      timeout: 30_000,
      polling: 250,
    });
    await systemShown();
  });

  it('dead letters: a rejected email shows up for an admin, who replays it; the email goes out', async () => {
    // The SMTP server rejects the next message for good: email-service dead-letters it at once.
    system.smtp.failNext(1, 550);
    const rejected = await signUp(system.apiUrl, `dead${randomUUID().slice(0, 8)}`);
    await signInAs(page, admin);
    await systemShown();

    const row = `#groups tr[data-group="${system.groups.email}"]`;
    await page.waitForFunction(
      (selector) => /^[1-9]/.test(document.querySelector(`${selector} td:last-child`)?.textContent ?? ''),
      { timeout: 60_000, polling: 250 },
      row,
    );
    await page.click(`${row} td:last-child button`);
    await page.waitForSelector('#dead-letter-table tbody tr');
    expect(await textOf('#dead-letter-table tbody tr')).toContain('email.requested.v1');

    await page.click('#dead-letter-table tbody tr button');
    await page.waitForFunction(
      () => document.querySelector('#dead-letter-outcome')?.textContent?.includes('replayed'),
      { timeout: 30_000, polling: 250 },
    );
    await waitFor('the replayed email', () => system.smtp.to(rejected.email).length === 1);
    expect(await textOf('#dead-letter-outcome')).toMatch(/replayed .*; 1 left the dead-letter topic/);
    expect(await page.$$('#dead-letter-table tbody tr')).toHaveLength(0);
    await screenshot(page, 'console-dead-letters');

    // A purge through a partition the topic does not have is the caller's mistake: 400, nothing deleted.
    const purge = await fetch(`${system.consoleUrl}/dead-letters/purge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await adminToken()}` },
      body: JSON.stringify({ group: system.groups.email, through: '99/0' }),
    });
    expect(purge.status).toBe(400);
    expect(await purge.json()).toMatchObject({ errors: [expect.objectContaining({ field: 'through' })] });
  });

  it('signs out: DELETE /sessions, the System view closes and the page forgets who was signed in', async () => {
    if (!(await visible('#sign-out'))) await signInAs(page, admin);
    const signedOut = page.waitForResponse(
      (response) => new URL(response.url()).pathname === '/sessions' && response.request().method() === 'DELETE',
    );
    await signOutOf(page);
    expect((await signedOut).status()).toBe(204);
    expect(await visible('#system-view')).toBe(false);
    expect(await textOf('#system-gate')).toBe('Sign in as an admin to see the system.');
    expect(await textOf('#account-status')).toContain('not signed in');
    // The stream's cookie went with it.
    const cookies = await page.cookies(system.consoleUrl + '/system/stream');
    expect(cookies.filter((c) => c.name === 'console_session')).toEqual([]);
  });

  it('works on a narrow screen: nothing wider than the viewport', async () => {
    await page.setViewport({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(page, 'console-narrow');
  });
});
