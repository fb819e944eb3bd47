import { Body, Controller, Get, Header, HttpCode, Inject, Post, Query } from '@nestjs/common';
import { z } from 'zod';
import { Authenticated } from '@app/auth';
import { APP_CONFIG, ConsoleConfig } from '@app/config';
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
import { ConsoleError, parse } from '../common/console-error';
import type { DeadLetterListing, DeadLetterSummary, PurgeAnswer, ReplayAnswer } from '../system/status';

const GroupQuery = z.object({ group: z.string().min(1).max(249) }).strict();
const ReplayBody = z.object({ group: z.string().min(1).max(249), id: z.string().min(1).max(255).optional() }).strict();
const PurgeBody = z
  .object({
    group: z.string().min(1).max(249),
    /** What the caller saw, as the list answered it: `partition/offset[,…]`. Nothing newer is deleted. */
    through: z.string().regex(/^\d+\/\d+(,\d+\/\d+)*$/, { error: 'partition/offset[,partition/offset…]' }),
  })
  .strict();

/** An email address in an error (an SMTP reply often quotes the recipient): an operator needs the error, not whose. */
const ADDRESS = /[^\s<>"'@]+@[^\s<>"'@]+/g;

function summary(letter: DeadLetter): DeadLetterSummary {
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
 * The dead letters of the groups in CONSOLE_GROUPS: listed, replayed (into the group's retry topic, so only that
 * group runs them again) and purged by a signed-in admin (`Authorization: Bearer`, role admin).
 */
@Controller('dead-letters')
@Authenticated('admin')
export class DeadLettersController {
  private readonly listings = new Map<string, Promise<DeadLetterListing>>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: ConsoleConfig,
    @Inject(KAFKA) private readonly kafka: Kafka,
  ) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  list(@Query() query: unknown): Promise<DeadLetterListing> {
    const group = this.knownGroup(parse(GroupQuery, query).group);
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
   * Republishes one dead letter (by event id) or all of the group's into the group's retry topic; those no older
   * letter precedes in their partition leave the topic (DeadLetters.replayAndRemove).
   */
  @Post('replay')
  @HttpCode(200)
  async replay(@Body() input: unknown): Promise<ReplayAnswer> {
    const body = parse(ReplayBody, input);
    const letters = new DeadLetters(this.kafka, this.knownGroup(body.group));
    const { replayed, removed } = await letters.replayAndRemove(body.id ? { id: body.id } : {});
    if (body.id && replayed.length === 0) {
      throw new ConsoleError(
        404,
        'CONSOLE.NO_SUCH_DEAD_LETTER',
        `no dead letter with event id ${body.id} in ${body.group}`,
      );
    }
    return { group: body.group, replayed: replayed.map(summary), removed };
  }

  /** Deletes the group's dead letters up to what the caller listed (`through`); later arrivals stay. */
  @Post('purge')
  @HttpCode(200)
  async purge(@Body() input: unknown): Promise<PurgeAnswer> {
    const body = parse(PurgeBody, input);
    try {
      const deleted = await new DeadLetters(this.kafka, this.knownGroup(body.group)).purge(parseThrough(body.through));
      return { group: body.group, deleted };
    } catch (error) {
      if (error instanceof UnknownPartitionError) {
        throw new ConsoleError(400, 'VALIDATION.FAILED', 'Request validation failed', [
          { field: 'through', message: error.message },
        ]);
      }
      throw error;
    }
  }

  private knownGroup(group: string): string {
    if (!this.config.CONSOLE_GROUPS.includes(group)) {
      throw new ConsoleError(400, 'VALIDATION.FAILED', 'Request validation failed', [
        { field: 'group', message: `must be one of CONSOLE_GROUPS: ${this.config.CONSOLE_GROUPS.join(', ')}` },
      ]);
    }
    return group;
  }
}
