import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, VideoProcessorConfig } from '@app/config';
import type { EventOf, PayloadOf, VideoMetadata } from '@app/contracts';
import { MEDIA_STORAGE, MediaStorage } from '@app/media';
import { ClaimLostError, HeldClaim, heldClaim } from '@app/inbox';
import { ConsumeContext, errorMessageOf, EventProducer, PermanentError, withSpan } from '@app/messaging';
import { probe } from '../media/probe';
import { NotAVideoError, runTool, ToolStoppedError } from '../media/tool';
import { scratchKey, scratchOfEndedRuns } from './scratch';

const SOURCE = 'video-processor';
/** At most one progress event a second (plus one per stage). */
const PROGRESS_EVERY_MS = 1000;

type Stage = PayloadOf<'video.progress.v1'>['stage'];

/**
 * One video job: ffprobe for the metadata, a JPEG thumbnail at 10% of the duration, an H.264/AAC preview with
 * faststart, each ffmpeg run a child process with a timeout. Outputs are written to a scratch directory and moved
 * into place only when all succeeded; a failed or interrupted run leaves nothing behind. The result event is
 * acknowledged by the broker before the job counts as done; a run that finds the outputs of an earlier one in place
 * (its result event failed) publishes them without running ffmpeg again. The job's claim is confirmed in the
 * database right before the outputs move into place and before any result event: a run whose claim passed to
 * another (its lease ran out) publishes nothing, neither outputs nor a `video.failed.v1`.
 */
@Injectable()
export class VideoProcessorService {
  private readonly logger = new Logger(VideoProcessorService.name);
  /** This replica in events and logs: host, process and a suffix (tests run several in one process). */
  readonly worker = `${hostname()}-${process.pid}-${randomUUID().slice(0, 4)}`;

  constructor(
    @Inject(MEDIA_STORAGE) private readonly storage: MediaStorage,
    @Inject(APP_CONFIG) private readonly config: VideoProcessorConfig,
    private readonly producer: EventProducer,
  ) {}

  async process(event: EventOf<'video.submitted.v1'>, context: ConsumeContext): Promise<void> {
    const { videoId, sourceKey } = event.data;
    const attempt = context.attempt;
    const publish = <T extends 'video.progress.v1' | 'video.processed.v1' | 'video.failed.v1'>(
      type: T,
      data: PayloadOf<T>,
    ) => this.producer.publish(type, data, { key: videoId, source: SOURCE, correlationId: event.correlationid });

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
      const metadata = await step('probe', () => probe(this.config.FFPROBE_PATH, source, this.run(context)));
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
        await step('thumbnail', () => this.thumbnail(source, metadata, `${scratch}/thumbnail.jpg`, context));
        progress('preview', 10);
        await step('preview', () =>
          this.preview(source, metadata, `${scratch}/preview.mp4`, context, (done) =>
            progress('preview', 10 + done * 89),
          ),
        );
        await claim.confirm();
        await this.storage.rename(`${scratch}/thumbnail.jpg`, thumbnailKey);
        await this.storage.rename(`${scratch}/preview.mp4`, previewKey);
        await this.storage.deletePrefix(scratch);
      }
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

  private run(context: ConsumeContext) {
    return { timeoutMs: this.config.FFMPEG_TIMEOUT_MS, signal: context.signal };
  }

  /** Scratch directories of runs whose claim is over (killed or cut off midway); never a live run's. */
  private async removeEndedRuns(directory: string, claim: HeldClaim): Promise<void> {
    const keys = (await this.storage.list(directory)).map((entry) => entry.key);
    for (const key of scratchOfEndedRuns(keys, claim.run)) await this.storage.deletePrefix(key);
  }

  private async thumbnail(source: string, metadata: VideoMetadata, key: string, context: ConsumeContext) {
    const output = await this.storage.writablePath(key);
    const at = (metadata.durationSeconds * 0.1).toFixed(3);
    await runTool(
      this.config.FFMPEG_PATH,
      [
        ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-ss', at, '-i', source],
        ...['-frames:v', '1', '-vf', `scale=${this.config.THUMBNAIL_WIDTH}:-2`, '-q:v', '3'],
        ...['-threads', String(this.config.FFMPEG_THREADS), output],
      ],
      this.run(context),
    );
  }

  private async preview(
    source: string,
    metadata: VideoMetadata,
    key: string,
    context: ConsumeContext,
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
        ...this.run(context),
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
