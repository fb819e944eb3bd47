import { z } from 'zod';
import { singleLine } from '../text';

/** Where a file lives in media storage: relative, `/`-separated, no `..`, no leading `/`. */
export const storageKey = z
  .string()
  .min(1)
  .max(512)
  .regex(/^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._\-/]+$/, { error: 'must be a relative storage key' });

/** What ffprobe found in an uploaded video. */
export const VideoMetadata = z
  .object({
    durationSeconds: z.number().nonnegative(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    videoCodec: singleLine(1, 64),
    audioCodec: singleLine(1, 64).optional(),
    bitRate: z.number().int().nonnegative(),
    sizeBytes: z.number().int().nonnegative(),
  })
  .strict();

export type VideoMetadata = z.infer<typeof VideoMetadata>;

/**
 * The user who uploaded the video: the notifier sends its progress and result to them only. Optional, an addition
 * to v1 that old events do not carry (deploy consumers first): an event without it reaches no one's private stream.
 */
const ownerId = z.uuid().optional();

/** A video was uploaded and waits to be processed. Topic `video-processing`, key: the video id. */
export const VideoSubmittedV1 = z
  .object({
    videoId: z.uuid(),
    ownerId,
    /** The uploaded file in media storage. */
    sourceKey: storageKey,
    /** The container the upload was recognised as by its content (`mp4`, `mov`, `webm`, `mkv`, …). */
    container: singleLine(1, 16),
    sizeBytes: z.number().int().positive(),
  })
  .strict();

/** How far processing got. Topic `video-processed`, key: the video id. Throttled: at most about once a second. */
export const VideoProgressV1 = z
  .object({
    videoId: z.uuid(),
    ownerId,
    progress: z.number().int().min(0).max(100),
    stage: z.enum(['probing', 'thumbnail', 'preview']),
    attempt: z.number().int().positive(),
  })
  .strict();

/** The video was processed. Topic `video-processed`, key: the video id. */
export const VideoProcessedV1 = z
  .object({
    videoId: z.uuid(),
    ownerId,
    metadata: VideoMetadata,
    thumbnailKey: storageKey,
    previewKey: storageKey,
    attempt: z.number().int().positive(),
    /** The processor replica that did the work (host and process). */
    processedBy: singleLine(1, 200),
  })
  .strict();

/** The video cannot be processed: a file that is not a video or is corrupt, or the last attempt failed. */
export const VideoFailedV1 = z
  .object({
    videoId: z.uuid(),
    ownerId,
    reason: singleLine(1, 1000),
    /** True when no retry could help (not a video, corrupt); false when retriable attempts ran out. */
    permanent: z.boolean(),
    attempt: z.number().int().positive(),
  })
  .strict();

/**
 * The owner deleted the video: its row is gone from users-api. Topic `video-processing` (after the video's
 * `video.submitted.v1`, same key: the video id), so the processors remove the uploaded file and the renditions, stop
 * a job still running for it and discard any result that comes later.
 */
export const VideoDeletedV1 = z
  .object({
    videoId: z.uuid(),
    ownerId,
    /** The uploaded file in media storage, as `video.submitted.v1` named it. */
    sourceKey: storageKey,
    deletedAt: z.iso.datetime(),
  })
  .strict();
