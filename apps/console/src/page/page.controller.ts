import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Controller, Get, Inject, Param, Redirect, Res } from '@nestjs/common';
import type { Response } from 'express';
import { APP_CONFIG, ConsoleConfig } from '@app/config';
import { ConsoleError } from '../common/console-error';
import type { ConsoleSettings } from '../system/status';

/** The page's own modules and style, by name only: nothing else of the assets directory, no path. */
const ASSET = /^[a-z][a-z-]*\.(js|css)$/;
const TYPES = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' } as const;

/**
 * The console page at `/`: its HTML, ES modules and style (built into CONSOLE_ASSETS_DIR), and the settings it starts
 * from. The page calls users-api and reads the notifier's stream from their own origins, as any client would.
 */
@Controller()
export class PageController {
  private readonly assets: string;
  private readonly policy: string;

  constructor(@Inject(APP_CONFIG) private readonly config: ConsoleConfig) {
    this.assets = resolve(config.CONSOLE_ASSETS_DIR);
    const api = new URL(config.CONSOLE_API_URL).origin;
    const notifier = new URL(config.CONSOLE_NOTIFIER_URL).origin;
    // Strict: anything an event carries cannot run as script, even if it were HTML.
    this.policy = [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' blob: data:",
      // The renditions are the owner's: fetched with the token and shown from object URLs.
      'media-src blob:',
      `connect-src 'self' ${api} ${notifier}`,
      "form-action 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].join('; ');
  }

  @Get()
  page(@Res() response: Response): void {
    this.send(response, 'index.html', 'text/html; charset=utf-8');
  }

  /** Where users-api served the console before it was an app of its own. */
  @Get('console')
  @Redirect('/', 301)
  moved(): void {}

  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() response: Response): void {
    const match = ASSET.exec(file);
    if (!match) throw new ConsoleError(404, 'CONSOLE.NO_SUCH_FILE', `no console file ${file}`);
    this.send(response, file, TYPES[match[1] as keyof typeof TYPES]);
  }

  @Get('config.json')
  settings(): ConsoleSettings {
    return {
      apiUrl: this.config.CONSOLE_API_URL.replace(/\/+$/, ''),
      notifierUrl: this.config.CONSOLE_NOTIFIER_URL.replace(/\/+$/, ''),
      mailUrl: this.config.CONSOLE_MAIL_URL ?? null,
      groups: this.config.CONSOLE_GROUPS,
      refreshMs: this.config.CONSOLE_REFRESH_MS,
    };
  }

  private send(response: Response, file: string, type: string): void {
    const path = join(this.assets, file);
    if (!existsSync(join(this.assets, 'index.html'))) {
      response
        .status(503)
        .json({ statusCode: 503, code: 'CONSOLE.NOT_BUILT', message: 'the console is not built: run npm run build' });
      return;
    }
    if (!existsSync(path)) throw new ConsoleError(404, 'CONSOLE.NO_SUCH_FILE', `no console file ${file}`);
    response.setHeader('Content-Security-Policy', this.policy);
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Cache-Control', 'no-cache');
    response.type(type).sendFile(path, { dotfiles: 'allow' });
  }
}
