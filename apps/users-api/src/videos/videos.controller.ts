import { Controller, Delete, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { VideoResponse, VideosService } from './videos.service';
import { CorrelationId } from '@app/runtime';
import { Authenticated, CurrentUser, Identity, OptionallyAuthenticated, OptionalUser } from '@app/auth';

export const VideoIdParam = z.uuid({ error: 'must be a UUID' });

/**
 * A video belongs to the signed-in user who uploaded it. Its status and renditions are for its owner only: anyone
 * else, signed in or not, gets the same 404 as for an id that does not exist, so ids tell nothing.
 */
@Controller('videos')
export class VideosController {
  constructor(private readonly videos: VideosService) {}

  /**
   * `multipart/form-data` with the video in field `file`: 202 with the video, processed in the background. Bearer
   * only: the guard refuses a request without a token (401) before a byte of the body is read, so a cross-site form
   * post (which cannot send Authorization) stores and publishes nothing.
   */
  @Post()
  @HttpCode(202)
  @Authenticated()
  async upload(
    @Req() request: Request,
    @CurrentUser() identity: Identity,
    @CorrelationId() correlationId: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<VideoResponse> {
    const video = await this.videos.submit(identity.userId, request, correlationId);
    response.setHeader('Location', `/videos/${video.id}`);
    return video;
  }

  @Get(':id')
  @OptionallyAuthenticated()
  find(
    @Param('id', { schema: VideoIdParam }) id: string,
    @OptionalUser() identity: Identity | undefined,
  ): Promise<VideoResponse> {
    return this.videos.find(identity?.userId, id);
  }

  /**
   * Deletes the video: 204 once its row is gone (its status is 404 from then on); the processors remove the upload
   * and the renditions from media storage shortly after, from the `video.deleted.v1` committed with the deletion.
   */
  @Delete(':id')
  @HttpCode(204)
  @Authenticated()
  async remove(
    @Param('id', { schema: VideoIdParam }) id: string,
    @CurrentUser() identity: Identity,
    @CorrelationId() correlationId: string,
  ): Promise<void> {
    await this.videos.remove(identity.userId, id, correlationId);
  }

  /** The JPEG thumbnail, once the video is completed. */
  @Get(':id/thumbnail')
  @OptionallyAuthenticated()
  async thumbnail(
    @Param('id', { schema: VideoIdParam }) id: string,
    @OptionalUser() identity: Identity | undefined,
    @Res() response: Response,
  ): Promise<void> {
    await send(response, await this.videos.renditionPath(identity?.userId, id, 'thumbnail'), 'image/jpeg');
  }

  /** The H.264/AAC MP4 preview, once the video is completed; `Range` requests get 206, so a player can seek. */
  @Get(':id/preview')
  @OptionallyAuthenticated()
  async preview(
    @Param('id', { schema: VideoIdParam }) id: string,
    @OptionalUser() identity: Identity | undefined,
    @Res() response: Response,
  ): Promise<void> {
    await send(response, await this.videos.renditionPath(identity?.userId, id, 'preview'), 'video/mp4');
  }
}

function send(response: Response, path: string, type: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error & { code?: string; headers?: Record<string, string> }) => {
      // A player that aborts a range request (every seek) is not an error; nor is anything once the answer started.
      if (!error || error.code === 'ECONNABORTED' || response.headersSent) return resolve();
      // send's own answers (416 with `Content-Range: bytes */size`) keep their headers.
      if (error.headers) response.set(error.headers);
      reject(error);
    };
    // The path is built from a storage key, never from the request; the media directory may sit under a dot-directory.
    response.sendFile(
      path,
      { headers: { 'content-type': type }, acceptRanges: true, maxAge: '1h', dotfiles: 'allow' },
      done,
    );
  });
}
