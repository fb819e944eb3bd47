import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, VideoProcessorConfig } from '@app/config';
import type { EventOf, PayloadOf, VideoMetadata } from '@app/contracts';
import { MEDIA_STORAGE, MediaStorage } from '@app/media';
import { boundedQuery, ClaimLostError, claimQueryTimeoutMs, HeldClaim, heldClaim } from '@app/inbox';
import { ConsumeContext, errorMessageOf, EventProducer, PermanentError, withSpan } from '@app/messaging';
import { probe } from '../media/probe';
import { NotAVideoError, runTool, ToolStoppedError } from '../media/tool';
import { SCHEMA } from '../schema';
import { scratchKey, scratchOfEndedRuns } from './scratch';

const SOURCE = 'video-processor';
/** At most one progress event a second (plus one per stage). */
const PROGRESS_EVERY_MS = 1000;

type Stage = PayloadOf<'video.progress.v1'>['stage'];

/** The owner deleted the video while its job ran: the job stops, and what it made is removed. */
class VideoDeletedError extends Error {
  override readonly name = 'VideoDeletedError';
}

/**
 * One video job: ffprobe for the metadata, a JPEG thumbnail at 10% of the duration, an H.264/AAC preview with
 * faststart, each ffmpeg run a child process with a timeout. Outputs are written to a scratch directory and moved
 * into place only when all succeeded; a failed or interrupted run leaves nothing behind. The result event is
 * acknowledged by the broker before the job counts as done; a run that finds the outputs of an earlier one in place
 * (its result event failed) publishes them without running ffmpeg again. The job's claim is confirmed in the
 * database right before the outputs move into place and before any result event: a run whose claim passed to
 * another (its lease ran out) publishes nothing, neither outputs nor a `video.failed.v1`.
 *
 * A deleted video (`video.deleted.v1`, recorded in `deleted_videos`) is never processed: its job does not start, a
 * running one is stopped (ffmpeg killed), and a run that finishes anyway removes its outputs and publishes nothing.
 * Every event published carries the video's `ownerId` from `video.submitted.v1`.
 */
@Injectable()
export class VideoProcessorService {
  private readonly logger = new Logger(VideoProcessorService.name);
  /** This replica in events and logs: host, process and a suffix (tests run several in one process). */
  readonly worker = `${hostname()}-${process.pid}-${randomUUID().slice(0, 4)}`;
  /** The jobs running in this process, by video id: a deletion stops its video's. */
  private readonly running = new Map<string, Set<AbortController>>();

  constructor(
    @Inject(MEDIA_STORAGE) private readonly storage: MediaStorage,
    @Inject(APP_CONFIG) private readonly config: VideoProcessorConfig,
    private readonly producer: EventProducer,
    private readonly dataSource: DataSource,
  ) {}

  async process(event: EventOf<'video.submitted.v1'>, context: ConsumeContext): Promise<void> {
    const { videoId, ownerId } = event.data;
    const owner = ownerId === undefined ? {} : { ownerId };
    const publish = <T extends 'video.progress.v1' | 'video.processed.v1' | 'video.failed.v1'>(
      type: T,
      data: PayloadOf<T>,
    ) =>
      this.producer.publish(
        type,
        { ...data, ...owner },
        {
          key: videoId,
          source: SOURCE,
          correlationId: event.correlationid,
        },
      );

    if (await this.isDeleted(videoId)) {
      this.logger.log(`video ${videoId} was deleted by its owner: not processed`);
      return;
    }
    const cancel = new AbortController();
    const jobs = this.running.get(videoId) ?? new Set<AbortController>();
    jobs.add(cancel);
    this.running.set(videoId, jobs);
    try {
      await this.work(event, context, publish, AbortSignal.any([context.signal, cancel.signal]), cancel.signal);
    } finally {
      jobs.delete(cancel);
      if (jobs.size === 0 && this.running.get(videoId) === jobs) this.running.delete(videoId);
    }
  }

  /** `video.deleted.v1` on this replica's live feed: recorded, and the video's job here (if any) is stopped. */
  async stop(videoId: string): Promise<void> {
    for (const job of this.running.get(videoId) ?? []) {
      this.logger.log(`video ${videoId} was deleted by its owner: stopping its job`);
      job.abort(new VideoDeletedError(`video ${videoId} was deleted by its owner`));
    }
    await this.markDeleted(videoId);
  }

  /** `video.deleted.v1` in the work queue: recorded first (so a run that moves outputs later sees it), then removed. */
  async remove(data: PayloadOf<'video.deleted.v1'>): Promise<void> {
    await this.stop(data.videoId);
    await this.storage.delete(data.sourceKey);
    await this.storage.deletePrefix(`videos/${data.videoId}`);
    this.logger.log(`video ${data.videoId} deleted: upload and renditions removed`);
  }

  /** Bounded like the claim statements: a silent database fails the check (retried), it never hangs the job. */
  private async isDeleted(videoId: string): Promise<boolean> {
    const { rowCount } = await boundedQuery(
      this.dataSource,
      `SELECT 1 FROM "${SCHEMA}".deleted_videos WHERE video_id = $1`,
      [videoId],
      claimQueryTimeoutMs(this.config.VIDEO_LEASE_MS),
    );
    return (rowCount ?? 0) > 0;
  }

  private async markDeleted(videoId: string): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO "${SCHEMA}".deleted_videos (video_id) VALUES ($1) ON CONFLICT (video_id) DO NOTHING`,
      [videoId],
    );
  }

  private async work(
    event: EventOf<'video.submitted.v1'>,
    context: ConsumeContext,
    publish: <T extends 'video.progress.v1' | 'video.processed.v1' | 'video.failed.v1'>(
      type: T,
      data: PayloadOf<T>,
    ) => Promise<unknown>,
    signal: AbortSignal,
    deleted: AbortSignal,
  ): Promise<void> {
    const { videoId, sourceKey } = event.data;
    const attempt = context.attempt;

    let lastProgressAt = 0;
    let lastStage: Stage | undefined;
    const progress = (stage: Stage, value: number) => {
      const now = Date.now();
      if (stage === lastStage && now - lastProgressAt < PROGRESS_EVERY_MS) return;
      lastStage = stage;
      lastProgressAt = now;
      // Best effort: a lost progress event only delays what a poller sees; the result event is what counts.
      publish('video.progress.v1', { videoId, progress: Math.min(99, Math.floor(value)), stage, attempt }).catch(
        (error: unknown) => this.logger.warn(`progress of ${videoId} not published: ${errorMessageOf(error)}`),
      );
    };

    // Each step is a span under the job's consumer span: a slow or failing step shows in the upload's trace.
    const step = <R>(name: string, work: () => Promise<R>) =>
      withSpan(`video ${name}`, { 'video.id': videoId, 'video.attempt': attempt }, work, 'internal');

    const claim = heldClaim();
    if (!claim) throw new PermanentError('video jobs run under a claim-mode inbox (none holds this one)');
    const directory = `videos/${videoId}`;
    /** The work is done and only its result event failed: retried as is, never reported as a failed video. */
    let resultPending = false;
    const scratch = scratchKey(directory, claim.run);
    try {
      await this.removeEndedRuns(directory, claim);
      if ((await this.storage.size(sourceKey)) === undefined) {
        throw new NotAVideoError(`the uploaded file ${sourceKey} is missing from media storage`);
      }
      const source = this.storage.localPath(sourceKey);
      progress('probing', 0);
      const metadata = await step('probe', () => probe(this.config.FFPROBE_PATH, source, this.run(signal)));
      const thumbnailKey = `${directory}/thumbnail.jpg`;
      const previewKey = `${directory}/preview.mp4`;
      // The preview moves into place last: with it there, an earlier run did all the work and only its result event
      // failed (or was never acknowledged). Its outputs are published as they are; ffmpeg does not run again.
      // Empty files are what a host crash can leave of a rename whose data never reached the disk: made again.
      const outputsInPlace =
        ((await this.storage.size(previewKey)) ?? 0) > 0 && ((await this.storage.size(thumbnailKey)) ?? 0) > 0;
      if (outputsInPlace) {
        this.logger.log(`video ${videoId}: the outputs of an earlier run are in place; publishing its result`);
      } else {
        progress('thumbnail', 5);
        await step('thumbnail', () => this.thumbnail(source, metadata, `${scratch}/thumbnail.jpg`, signal));
        progress('preview', 10);
        await step('preview', () =>
          this.preview(source, metadata, `${scratch}/preview.mp4`, signal, (done) =>
            progress('preview', 10 + done * 89),
          ),
        );
        await claim.confirm();
        await this.storage.rename(`${scratch}/thumbnail.jpg`, thumbnailKey);
        await this.storage.rename(`${scratch}/preview.mp4`, previewKey);
        await this.storage.deletePrefix(scratch);
      }
      // A deletion handled while this ran (on another replica, or before the outputs moved): nothing is published,
      // and what this run moved into place is removed (the deletion was recorded before it removed the files).
      if (deleted.aborted || (await this.isDeleted(videoId)))
        throw new VideoDeletedError(`video ${videoId} was deleted`);
      await claim.confirm();
      resultPending = true;
      await publish('video.processed.v1', {
        videoId,
        metadata,
        thumbnailKey,
        previewKey,
        attempt,
        processedBy: this.worker,
      });
      this.logger.log(`video ${videoId} processed (attempt ${attempt}, ${metadata.durationSeconds} s)`);
    } catch (error) {
      await this.storage.deletePrefix(scratch).catch(() => undefined);
      // Stopped by the deletion, or failed because the deletion removed the files under it (another replica handled
      // it): not the video's failure. A run that lost its claim or shuts down leaves that to the next run.
      const stoppedForDeletion =
        deleted.aborted ||
        error instanceof VideoDeletedError ||
        (!lostOrStopped(error) && !signal.aborted && (await this.isDeleted(videoId).catch(() => false)));
      if (!resultPending && stoppedForDeletion) {
        await this.storage.deletePrefix(directory).catch(() => undefined);
        await this.storage.delete(sourceKey).catch(() => undefined);
        this.logger.log(`video ${videoId} was deleted by its owner: job stopped, its outputs removed`);
        return;
      }
      if (lostOrStopped(error) || context.signal.aborted || resultPending) throw error;
      if (error instanceof NotAVideoError || context.finalAttempt) {
        // Only the run holding the claim reports a failure: another may be processing the video right now.
        await claim.confirm();
        const permanent = error instanceof NotAVideoError;
        const reason = permanent ? error.message : `gave up after ${attempt} attempt(s): ${errorMessageOf(error)}`;
        await publish('video.failed.v1', { videoId, reason: reason.slice(0, 1000), permanent, attempt });
        this.logger.warn(`video ${videoId} failed: ${reason}`);
        return;
      }
      throw error;
    }
  }

  private run(signal: AbortSignal) {
    return { timeoutMs: this.config.FFMPEG_TIMEOUT_MS, signal };
  }

  /** Scratch directories of runs whose claim is over (killed or cut off midway); never a live run's. */
  private async removeEndedRuns(directory: string, claim: HeldClaim): Promise<void> {
    const keys = (await this.storage.list(directory)).map((entry) => entry.key);
    for (const key of scratchOfEndedRuns(keys, claim.run)) await this.storage.deletePrefix(key);
  }

  private async thumbnail(source: string, metadata: VideoMetadata, key: string, signal: AbortSignal) {
    const output = await this.storage.writablePath(key);
    const at = (metadata.durationSeconds * 0.1).toFixed(3);
    await runTool(
      this.config.FFMPEG_PATH,
      [
        ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-ss', at, '-i', source],
        ...['-frames:v', '1', '-vf', `scale=${this.config.THUMBNAIL_WIDTH}:-2`, '-q:v', '3'],
        ...['-threads', String(this.config.FFMPEG_THREADS), output],
      ],
      this.run(signal),
    );
  }

  private async preview(
    source: string,
    metadata: VideoMetadata,
    key: string,
    signal: AbortSignal,
    onProgress: (fraction: number) => void,
  ) {
    const totalUs = metadata.durationSeconds * 1_000_000;
    await runTool(
      this.config.FFMPEG_PATH,
      [
        ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-i', source],
        ...['-map', '0:v:0', '-map', '0:a:0?', '-vf', `scale=-2:${this.config.PREVIEW_HEIGHT}`],
        ...['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '28', '-pix_fmt', 'yuv420p'],
        ...['-c:a', 'aac', '-b:a', '96k', '-movflags', '+faststart'],
        ...['-threads', String(this.config.FFMPEG_THREADS), '-progress', 'pipe:1', '-nostats'],
        await this.storage.writablePath(key),
      ],
      {
        ...this.run(signal),
        onLine: (line) => {
          // ffmpeg's progress output: key=value lines, out_time_us is how far the output has got.
          const match = /^out_time_us=(\d+)$/.exec(line);
          if (match && totalUs > 0) onProgress(Math.min(1, Number(match[1]) / totalUs));
        },
      },
    );
  }
}

/** Failures that are not the video's: the run stopped, or its claim passed to another run. */
function lostOrStopped(error: unknown): boolean {
  return error instanceof ToolStoppedError || error instanceof ClaimLostError;
}
