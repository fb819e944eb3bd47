import { timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';

import { z } from 'zod';
import { APP_CONFIG, UsersApiConfig } from '@app/config';
import {
  DeadLetter,
  DeadLetters,
  formatThrough,
  KAFKA,
  Kafka,
  lastOffsets,
  parseThrough,
  UnknownPartitionError,
} from '@app/messaging';
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationFailedError } from '../common/app-error';
import { SystemMonitor } from './system-monitor';

/** What the page loads: its HTML, script and style, built into CONSOLE_ASSETS_DIR. */
const ASSETS: Record<string, string> = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
};

const GroupQuery = z.object({ group: z.string().min(1).max(249) }).strict();
type GroupQuery = z.infer<typeof GroupQuery>;
const ReplayBody = z.object({ group: z.string().min(1).max(249), id: z.string().min(1).max(255).optional() }).strict();
type ReplayBody = z.infer<typeof ReplayBody>;
const PurgeBody = z
  .object({
    group: z.string().min(1).max(249),
    /** What the caller saw, as the list answered it: `partition/offset[,…]`. Nothing newer is deleted. */
    through: z.string().regex(/^\d+\/\d+(,\d+\/\d+)*$/, { error: 'partition/offset[,partition/offset…]' }),
  })
  .strict();
type PurgeBody = z.infer<typeof PurgeBody>;

/** An email address in an error (an SMTP reply often quotes the recipient): the list is readable without a token. */
const ADDRESS = /[^\s<>"'@]+@[^\s<>"'@]+/g;

/** A dead letter as the page lists it: never its value (event data is user input and may be personal). */
function summary(letter: DeadLetter) {
  return {
    partition: letter.partition,
    offset: letter.offset,
    eventId: letter.eventId,
    eventType: letter.eventType,
    originalTopic: letter.originalTopic,
    reason: letter.reason,
    errorClass: letter.errorClass,
    errorMessage: letter.errorMessage?.replace(ADDRESS, '<address>') ?? null,
    attempts: letter.attempts,
    failedAt: letter.failedAt,
  };
}

/**
 * The web console: one page to try each scenario and watch the system (apps, topics, groups, dead letters), live
 * over Server-Sent Events. Served by users-api, the system's front door: the page calls the same API a client would,
 * from the same origin. Replay and purge change state and take CONSOLE_ADMIN_TOKEN as a bearer token.
 */
@Controller('console')
export class ConsoleController {
  private readonly assets: string;
  private readonly listings = new Map<
    string,
    Promise<{ group: string; letters: ReturnType<typeof summary>[]; through: string }>
  >();

  constructor(
    @Inject(APP_CONFIG) private readonly config: UsersApiConfig,
    @Inject(KAFKA) private readonly kafka: Kafka,
    private readonly monitor: SystemMonitor,
  ) {
    this.assets = resolve(config.CONSOLE_ASSETS_DIR);
  }

  /** The page; the strict policy keeps anything an event carries from running as script, even if it were HTML. */
  @Get()
  page(@Res() response: Response): void {
    this.send(response, 'index.html', 'text/html; charset=utf-8');
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() response: Response): void {
    const type = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (!type) throw new NotFoundError('CONSOLE.NO_SUCH_FILE', `no console file ${file}`);
    this.send(response, file, type);
  }

  /** What the page needs to know about its surroundings. */
  @Get('config.json')
  settings() {
    return {
      notifierUrl: this.config.CONSOLE_NOTIFIER_URL.replace(/\/+$/, ''),
      mailUrl: this.config.CONSOLE_MAIL_URL ?? null,
      groups: this.config.CONSOLE_GROUPS,
      refreshMs: this.config.CONSOLE_REFRESH_MS,
      adminEnabled: this.config.CONSOLE_ADMIN_TOKEN !== undefined,
    };
  }

  /** `event: system` with a SystemSnapshot every CONSOLE_REFRESH_MS while the page is open. */
  @Get('stream')
  stream(@Req() request: Request, @Res() response: Response): void {
    response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    response.setHeader('Cache-Control', 'no-cache, no-transform');
    response.setHeader('X-Accel-Buffering', 'no');
    response.flushHeaders();
    response.write('retry: 3000\n\n');
    const unsubscribe = this.monitor.subscribe({
      snapshot: (snapshot) => response.write(`event: system\ndata: ${JSON.stringify(snapshot)}\n\n`),
      end: () => response.end(),
    });
    request.on('close', unsubscribe);
  }

  /** The group's dead letters now, oldest first, and `through`: what a purge of exactly these would delete up to. */
  @Get('dead-letters')
  deadLetters(@Query({ schema: GroupQuery }) query: GroupQuery) {
    const group = this.knownGroup(query.group);
    // A listing reads the whole topic through a consumer: pages asking at once share one.
    let listing = this.listings.get(group);
    if (!listing) {
      listing = new DeadLetters(this.kafka, group)
        .list({}, 15_000)
        .then((letters) => ({ group, letters: letters.map(summary), through: formatThrough(lastOffsets(letters)) }))
        .finally(() => this.listings.delete(group));
      this.listings.set(group, listing);
    }
    return listing;
  }

  /**
   * Republishes one dead letter (by event id) or all of the group's into the group's retry topic (only that group
   * runs them again); those no older letter precedes in their partition leave the topic (DeadLetters.replayAndRemove).
   */
  @Post('dead-letters/replay')
  @HttpCode(200)
  async replay(
    @Body({ schema: ReplayBody }) body: ReplayBody,
    @Headers('authorization') authorization: string | undefined,
  ) {
    this.authorize(authorization);
    const letters = new DeadLetters(this.kafka, this.knownGroup(body.group));
    const { replayed, removed } = await letters.replayAndRemove(body.id ? { id: body.id } : {});
    if (body.id && replayed.length === 0) {
      throw new NotFoundError(
        'CONSOLE.NO_SUCH_DEAD_LETTER',
        `no dead letter with event id ${body.id} in ${body.group}`,
      );
    }
    return { group: body.group, replayed: replayed.map(summary), removed };
  }

  /** Deletes the group's dead letters up to what the caller listed (`through`); later arrivals stay. */
  @Post('dead-letters/purge')
  @HttpCode(200)
  async purge(
    @Body({ schema: PurgeBody }) body: PurgeBody,
    @Headers('authorization') authorization: string | undefined,
  ) {
    this.authorize(authorization);
    try {
      const deleted = await new DeadLetters(this.kafka, this.knownGroup(body.group)).purge(parseThrough(body.through));
      return { group: body.group, deleted };
    } catch (error) {
      if (error instanceof UnknownPartitionError) {
        throw new ValidationFailedError([{ field: 'through', message: error.message }]);
      }
      throw error;
    }
  }

  private knownGroup(group: string): string {
    if (!this.config.CONSOLE_GROUPS.includes(group)) {
      throw new ValidationFailedError([
        { field: 'group', message: `must be one of CONSOLE_GROUPS: ${this.config.CONSOLE_GROUPS.join(', ')}` },
      ]);
    }
    return group;
  }

  private authorize(authorization: string | undefined): void {
    const token = this.config.CONSOLE_ADMIN_TOKEN;
    if (token === undefined) {
      throw new ForbiddenError(
        'CONSOLE.ADMIN_DISABLED',
        'replay and purge are off: set CONSOLE_ADMIN_TOKEN to allow them',
      );
    }
    const given = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    if (given === undefined) {
      throw new UnauthorizedError('CONSOLE.TOKEN_REQUIRED', 'send the admin token as Authorization: Bearer <token>');
    }
    const expected = Buffer.from(token);
    const offered = Buffer.from(given);
    if (offered.length !== expected.length || !timingSafeEqual(offered, expected)) {
      throw new ForbiddenError('CONSOLE.TOKEN_INVALID', 'the admin token is not the one configured');
    }
  }

  private send(response: Response, file: string, type: string): void {
    const path = join(this.assets, file);
    if (!existsSync(path)) {
      response
        .status(503)
        .json({ statusCode: 503, code: 'CONSOLE.NOT_BUILT', message: 'the console is not built: run npm run build' });
      return;
    }
    const notifier = new URL(this.config.CONSOLE_NOTIFIER_URL).origin;
    response.setHeader(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self'; connect-src 'self' ${notifier}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    );
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Cache-Control', 'no-cache');
    response.type(type).sendFile(path, { dotfiles: 'allow' });
  }
}
