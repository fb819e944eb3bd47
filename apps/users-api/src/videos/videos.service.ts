import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Request } from 'express';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, UsersApiConfig } from '@app/config';
import type { VideoMetadata } from '@app/contracts';
import { MEDIA_STORAGE, MediaStorage } from '@app/media';
import { OutboxWriter } from '@app/outbox';
import { NotFoundError } from '../common/app-error';
import { SCHEMA } from '../schema';
import { receiveVideo } from './upload';

export const SOURCE = 'users-api';
const UPLOADS = 'uploads';
/** An upload whose row never committed (the process died between the write and the commit) is removed after this. */
const ORPHAN_AGE_MS = 3_600_000;

export type VideoStatus = 'pending' | 'processing' | 'completed' | 'failed';

export interface VideoResponse {
  id: string;
  status: VideoStatus;
  progress: number;
  metadata: VideoMetadata | null;
  thumbnailUrl: string | null;
  previewUrl: string | null;
  error?: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
}

interface VideoRow {
  id: string;
  owner_id: string | null;
  source_key: string;
  status: VideoStatus;
  progress: number;
  metadata: VideoMetadata | null;
  thumbnail_key: string | null;
  preview_key: string | null;
  error: string | null;
  attempts: number;
  created_at: Date;
  updated_at: Date;
}

const table = `"${SCHEMA}".videos`;

@Injectable()
export class VideosService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(VideosService.name);
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly dataSource: DataSource,
    private readonly outbox: OutboxWriter,
    @Inject(MEDIA_STORAGE) private readonly storage: MediaStorage,
    @Inject(APP_CONFIG) private readonly config: UsersApiConfig,
  ) {}

  /**
   * Streams the upload to media storage, then commits the video row and `video.submitted.v1` in one transaction.
   * Bad input is refused before anything is committed, and what was written is removed.
   */
  async submit(ownerId: string, request: Request, correlationId: string): Promise<VideoResponse> {
    const id = randomUUID();
    const limits = { maxBytes: this.config.VIDEO_MAX_BYTES, containers: this.config.VIDEO_CONTAINERS };
    const sourceKey = `${UPLOADS}/${id}`;
    const upload = await receiveVideo(
      request,
      limits,
      (content) => this.storage.write(sourceKey, content),
      () => this.storage.delete(sourceKey),
    );
    try {
      const row = await this.dataSource.transaction(async (tx) => {
        const [created] = await tx.query<VideoRow[]>(
          `INSERT INTO ${table} (id, owner_id, status, source_key, container, size_bytes)
           VALUES ($1, $2, 'pending', $3, $4, $5) RETURNING *`,
          [id, ownerId, sourceKey, upload.container, upload.sizeBytes],
        );
        await this.outbox.add(
          tx,
          'video.submitted.v1',
          { videoId: id, ownerId, sourceKey, container: upload.container, sizeBytes: upload.sizeBytes },
          { key: id, source: SOURCE, correlationId, subject: `video/${id}` },
        );
        return created;
      });
      this.logger.log(`video ${id} submitted by ${ownerId} (${upload.container}, ${upload.sizeBytes} bytes)`);
      return toResponse(row);
    } catch (error) {
      await this.storage.delete(sourceKey).catch(() => undefined);
      throw error;
    }
  }

  /** The video, for its owner; `userId` undefined (anonymous) or anyone else gets the 404 of an unknown id. */
  async find(userId: string | undefined, id: string): Promise<VideoResponse> {
    return toResponse(await this.ownRow(userId, id));
  }

  /**
   * Deletes the owner's video: the row and `video.deleted.v1` (key: the video id, after its `video.submitted.v1`)
   * commit together; the processors remove the files and stop or discard its job. Anyone else's, or a second
   * delete: 404.
   */
  async remove(userId: string, id: string, correlationId: string): Promise<void> {
    await this.dataSource.transaction(async (tx) => {
      const [[row]] = await tx.query<[VideoRow[], number]>(
        `DELETE FROM ${table} WHERE id = $1 AND owner_id = $2 RETURNING *`,
        [id, userId],
      );
      if (!row) throw notFound(id);
      await this.outbox.add(
        tx,
        'video.deleted.v1',
        { videoId: id, ownerId: userId, sourceKey: row.source_key, deletedAt: new Date().toISOString() },
        { key: id, source: SOURCE, correlationId, subject: `video/${id}` },
      );
    });
    this.logger.log(`video ${id} deleted by ${userId}`);
  }

  /** The storage path of a finished rendition of the owner's video, or a 404 saying why there is none. */
  async renditionPath(userId: string | undefined, id: string, rendition: 'thumbnail' | 'preview'): Promise<string> {
    const row = await this.ownRow(userId, id);
    const key = rendition === 'thumbnail' ? row.thumbnail_key : row.preview_key;
    if (row.status !== 'completed' || !key) {
      throw new NotFoundError('VIDEO.NOT_READY', `Video ${id} has no ${rendition} (status ${row.status})`);
    }
    return this.storage.localPath(key);
  }

  /** Applies a progress report: never backwards, never after a final state. */
  async progressed(tx: EntityManager, id: string, progress: number, attempt: number): Promise<void> {
    await tx.query(
      `UPDATE ${table} SET status = 'processing', progress = GREATEST(progress, $2), attempts = GREATEST(attempts, $3),
              updated_at = now()
        WHERE id = $1 AND status IN ('pending', 'processing')`,
      [id, progress, attempt],
    );
  }

  /** Applies the result; a final state is final, whatever arrives later or again. */
  async processed(
    tx: EntityManager,
    id: string,
    result: { metadata: VideoMetadata; thumbnailKey: string; previewKey: string; attempt: number },
  ): Promise<void> {
    await tx.query(
      `UPDATE ${table} SET status = 'completed', progress = 100, metadata = $2, thumbnail_key = $3, preview_key = $4,
              attempts = GREATEST(attempts, $5), error = NULL, updated_at = now()
        WHERE id = $1 AND status IN ('pending', 'processing')`,
      [id, JSON.stringify(result.metadata), result.thumbnailKey, result.previewKey, result.attempt],
    );
  }

  async failed(tx: EntityManager, id: string, reason: string, attempt: number): Promise<void> {
    await tx.query(
      `UPDATE ${table} SET status = 'failed', error = $2, attempts = GREATEST(attempts, $3), updated_at = now()
        WHERE id = $1 AND status IN ('pending', 'processing')`,
      [id, reason, attempt],
    );
  }

  onApplicationBootstrap(): void {
    void this.sweepOrphans();
    this.sweeper = setInterval(() => void this.sweepOrphans(), ORPHAN_AGE_MS / 4);
    this.sweeper.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
  }

  /** Removes uploads older than an hour whose video row never committed (or half-written ones). */
  async sweepOrphans(olderThanMs = ORPHAN_AGE_MS): Promise<number> {
    try {
      const entries = await this.storage.list(UPLOADS);
      const old = entries.filter((e) => Date.now() - e.modifiedAt.getTime() > olderThanMs);
      const ids = old.map((e) => /^uploads\/([0-9a-f-]{36})/.exec(e.key)?.[1]).filter((x): x is string => !!x);
      const known = new Set(
        ids.length === 0
          ? []
          : (
              await this.dataSource.query<{ id: string }[]>(`SELECT id FROM ${table} WHERE id = ANY($1::uuid[])`, [ids])
            ).map((r) => r.id),
      );
      let removed = 0;
      for (const entry of old) {
        const id = /^uploads\/([0-9a-f-]{36})/.exec(entry.key)?.[1];
        if (id && known.has(id) && entry.key === `${UPLOADS}/${id}`) continue;
        await this.storage.delete(entry.key);
        removed += 1;
      }
      if (removed > 0) this.logger.log(`removed ${removed} upload(s) whose video was never created`);
      return removed;
    } catch (error) {
      this.logger.warn(`orphan upload sweep failed: ${(error as Error).message}`);
      return 0;
    }
  }

  /** One query for "there and yours": nothing, not even timing, tells someone else's video from a missing one. */
  private async ownRow(userId: string | undefined, id: string): Promise<VideoRow> {
    const [row] =
      userId === undefined
        ? []
        : await this.dataSource.query<VideoRow[]>(`SELECT * FROM ${table} WHERE id = $1 AND owner_id = $2`, [
            id,
            userId,
          ]);
    if (!row) throw notFound(id);
    return row;
  }
}

function notFound(id: string): NotFoundError {
  return new NotFoundError('VIDEO.NOT_FOUND', `No video with id ${id}`);
}

function toResponse(row: VideoRow): VideoResponse {
  const completed = row.status === 'completed';
  return {
    id: row.id,
    status: row.status,
    progress: row.progress,
    metadata: row.metadata,
    thumbnailUrl: completed && row.thumbnail_key ? `/videos/${row.id}/thumbnail` : null,
    previewUrl: completed && row.preview_key ? `/videos/${row.id}/preview` : null,
    ...(row.error ? { error: row.error } : {}),
    attempts: row.attempts,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
