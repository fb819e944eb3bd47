import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { Browser, Page } from 'puppeteer-core';

const root = join(__dirname, '..', '..');
/** Screenshots the browser tests take, as PNG: `.run/screenshots/<name>.png`. */
export const SCREENSHOTS = join(root, '.run', 'screenshots');

/** Debian's chromium (scripts/test.sh installs it when missing), or CHROMIUM_PATH. */
function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  return execFileSync('bash', ['-c', 'command -v chromium || command -v chromium-browser'], {
    encoding: 'utf8',
  }).trim();
}

/** A headless Chromium; root (as in CI here) cannot use its sandbox. */
export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** What a page did that a test wants to know: errors thrown or logged, and requests to anywhere but `origin`. */
export interface PageWatch {
  errors: string[];
  foreignRequests: string[];
  /** `status url` of each answer ≥ 400: a refused form is one, a missing file another. */
  failedResponses: string[];
}

/** Records a page's script errors, console errors and requests to anywhere but `origin` and `alsoAllowed`. */
export function watchPage(page: Page, origin: string, alsoAllowed: string[] = []): PageWatch {
  const watch: PageWatch = { errors: [], foreignRequests: [], failedResponses: [] };
  page.on('pageerror', (error) => watch.errors.push(error instanceof Error ? error.message : String(error)));
  page.on('console', (message) => {
    // The browser reports each answer ≥ 400 as a console error too; those are in failedResponses.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource: the server responded')) {
      watch.errors.push(message.text());
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) watch.failedResponses.push(`${response.status()} ${response.url()}`);
  });
  page.on('request', (request) => {
    const url = request.url();
    const allowed = [origin, ...alsoAllowed, 'data:', 'blob:'];
    if (!allowed.some((prefix) => url.startsWith(prefix))) {
      watch.foreignRequests.push(url);
    }
  });
  return watch;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
