/// <reference lib="dom" />
// Code passed to page.evaluate and waitForFunction runs in the page, with its DOM.
import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'puppeteer-core';
import { launchBrowser, screenshot, watchPage, PageWatch } from './support/browser';
import { RunningApp } from '@app/runtime';
import { bootConsole } from './support/apps';
import { RunningSystem } from './support/system';
import { makeVideo, removeTestFiles } from './support/videos';
import { waitFor } from './support/wait';

const TOKEN = `console-token-${randomUUID()}`;

/**
 * (waitForFunction polls on a timer: its default, animation frames, does not run in a page that is not in front.)
 *
 * The console (apps/console) in headless Chromium against all six apps as processes: each scenario is tried through the page's
 * forms and watched arriving over the live streams; the System view shows a dead letter and replays it with the
 * admin token only. Screenshots go to .run/screenshots/console-*.png.
 */
describe('web console in a real browser', () => {
  const system = new RunningSystem();
  let browser: Browser;
  const pages: { page: Page; watch: PageWatch }[] = [];
  let page: Page;

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

  beforeAll(async () => {
    await system.start({
      console: { CONSOLE_ADMIN_TOKEN: TOKEN, CONSOLE_REFRESH_MS: '1000' },
    });
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

  it('shows the system tables as being read until the first snapshot arrives, and the system once it does', async () => {
    const opened = await browser.newPage();
    // The system stream held back, as a slow broker round or a buffering proxy would: the page has no snapshot yet.
    await opened.setRequestInterception(true);
    const held: (() => Promise<void>)[] = [];
    opened.on('request', (request) => {
      if (new URL(request.url()).pathname === '/system/stream') held.push(() => request.continue());
      else void request.continue();
    });
    try {
      await opened.goto(`${system.consoleUrl}/`, { waitUntil: 'domcontentloaded' });
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
    } finally {
      await opened.close();
    }
  });

  it('register: the welcome email is shown as sent once email-service sent it; HTML in a field stays text', async () => {
    const name = `console${randomUUID().slice(0, 8)}`;
    await fill(page, '#register-form [name=email]', `${name}@example.com`);
    await fill(page, '#register-form [name=username]', name);
    await fill(page, '#register-form [name=password]', 'a long console password');
    await page.click('#register-form button');
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

  it('video: the progress bar reaches 100%, the thumbnail loads and the preview plays', async () => {
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
    await screenshot(page, 'console-video');
  });

  it('posts: a post created in one page shows as a notification in both, as text; an edit refreshes the cache', async () => {
    const [first, second] = pages.map((p) => p.page);
    const title = `<img src=x onerror="window.pwned=1"> ${randomUUID().slice(0, 6)}`;
    // No post yet in this page: nothing to edit, so no edit form.
    for (const each of [first, second]) {
      expect(await each.$eval('#edit-form', (form) => getComputedStyle(form).display)).toBe('none');
    }
    // The author is the user registered above (the form was filled in by the registration).
    expect(await first.$eval('#post-form [name=authorId]', (input) => (input as HTMLInputElement).value)).toMatch(
      /^[0-9a-f-]{36}$/,
    );
    await first.bringToFront();
    await fill(first, '#post-form [name=title]', title);
    await fill(first, '#post-form [name=body]', 'written in the console');
    await first.click('#post-form button');
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
    await screenshot(first, 'console-posts');
  });

  it('dead letters: a rejected email shows up, replay is refused without the token and works with it', async () => {
    // The SMTP server rejects the next message for good: email-service dead-letters it at once.
    system.smtp.failNext(1, 550);
    const name = `dead${randomUUID().slice(0, 8)}`;
    await fill(page, '#register-form [name=email]', `${name}@example.com`);
    await fill(page, '#register-form [name=username]', name);
    await fill(page, '#register-form [name=password]', 'a long console password');
    await page.click('#register-form button');

    const row = `#groups tr[data-group="${system.groups.email}"]`;
    await page.waitForFunction(
      (selector) => /^[1-9]/.test(document.querySelector(`${selector} td:last-child`)?.textContent ?? ''),
      { timeout: 60_000, polling: 250 },
      row,
    );
    await page.click(`${row} td:last-child button`);
    await page.waitForSelector('#dead-letter-table tbody tr');
    expect(await textOf('#dead-letter-table tbody tr')).toContain('email.requested.v1');

    // No token: refused, and the letter stays.
    await page.click('#dead-letter-table tbody tr button');
    await page.waitForFunction(() => document.querySelector('#dead-letter-outcome')?.textContent?.includes('401'), {
      timeout: 30_000,
      polling: 250,
    });
    // A wrong token: refused too.
    await fill(page, '#token-form [name=token]', 'not-the-admin-token-at-all');
    await page.click('#token-form button');
    await page.click('#dead-letter-table tbody tr button');
    await page.waitForFunction(() => document.querySelector('#dead-letter-outcome')?.textContent?.includes('403'), {
      timeout: 30_000,
      polling: 250,
    });

    // The token: replayed, the email goes out this time, and the letter leaves the list.
    await fill(page, '#token-form [name=token]', TOKEN);
    await page.click('#token-form button');
    await page.click('#dead-letter-table tbody tr button');
    await page.waitForFunction(
      () => document.querySelector('#dead-letter-outcome')?.textContent?.includes('replayed'),
      {
        timeout: 30_000,
        polling: 250,
      },
    );
    await waitFor('the replayed email', () => system.smtp.to(`${name}@example.com`).length === 1);
    expect(await textOf('#dead-letter-outcome')).toMatch(/replayed .*; 1 left the dead-letter topic/);
    expect(await page.$$('#dead-letter-table tbody tr')).toHaveLength(0);
    await page.waitForFunction(
      (username) =>
        [...document.querySelectorAll('#register-log li.sent')].some((li) => li.textContent?.includes(username)),
      { timeout: 30_000, polling: 250 },
      name,
    );
    await screenshot(page, 'console-dead-letters');

    // A purge through a partition the topic does not have is the caller's mistake: 400, nothing deleted.
    const purge = await fetch(`${system.consoleUrl}/dead-letters/purge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ group: system.groups.email, through: '99/0' }),
    });
    expect(purge.status).toBe(400);
    expect(await purge.json()).toMatchObject({ errors: [expect.objectContaining({ field: 'through' })] });
  });

  it('works on a narrow screen: nothing wider than the viewport', async () => {
    await page.setViewport({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(page, 'console-narrow');
  });
});

/** The console's HTTP side where no admin token is configured (the console app in the test process). */
describe('web console without an admin token', () => {
  let app: RunningApp;

  beforeAll(async () => {
    app = await bootConsole();
  });

  afterAll(async () => {
    await app?.app.close();
  });

  it('serves the page at / under a policy that runs no script but its own, and /console moves there', async () => {
    const page = await fetch(`${app.url}/`);
    expect(page.status).toBe(200);
    const policy = page.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("default-src 'none'");
    // The page calls users-api and the notifier where the browser reaches them, and nothing else.
    expect(policy).toContain("connect-src 'self' http://127.0.0.1:3000 http://127.0.0.1:3004");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    for (const module of ['main.js', 'system.js', 'dead-letters.js', 'console.css']) {
      expect((await fetch(`${app.url}/assets/${module}`)).status).toBe(200);
    }
    // Only the page's own files: not whatever the name of a property or a path might reach.
    for (const name of ['constructor', 'index.html', '..%2Fpackage.json', 'nothing-here.js']) {
      expect((await fetch(`${app.url}/assets/${name}`)).status).toBe(404);
    }
    const moved = await fetch(`${app.url}/console`, { redirect: 'manual' });
    expect([moved.status, moved.headers.get('location')]).toEqual([301, '/']);
  });

  it('refuses replay and purge with 403 while CONSOLE_ADMIN_TOKEN is unset, and unknown groups with 400', async () => {
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${app.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    for (const [path, body] of [
      ['/dead-letters/replay', { group: 'email-service' }],
      ['/dead-letters/purge', { group: 'email-service', through: '0/1' }],
    ] as const) {
      const refused = await post(path, body, { authorization: 'Bearer some-token-of-any-kind' });
      expect(refused.status).toBe(403);
      expect(await refused.json()).toMatchObject({ code: 'CONSOLE.ADMIN_DISABLED' });
    }
    const unknown = await fetch(`${app.url}/dead-letters?group=someone-else`);
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ errors: [expect.objectContaining({ field: 'group' })] });
  });
});
