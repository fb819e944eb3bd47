import { Controller, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { VideoResponse, VideosService } from './videos.service';
import { CorrelationId } from '@app/runtime';

export const VideoIdParam = z.uuid({ error: 'must be a UUID' });

@Controller('videos')
export class VideosController {
  constructor(private readonly videos: VideosService) {}

  /** `multipart/form-data` with the video in field `file`: 202 with the video, processed in the background. */
  @Post()
  @HttpCode(202)
  async upload(
    @Req() request: Request,
    @CorrelationId() correlationId: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<VideoResponse> {
    const video = await this.videos.submit(request, correlationId);
    response.setHeader('Location', `/videos/${video.id}`);
    return video;
  }

  @Get(':id')
  find(@Param('id', { schema: VideoIdParam }) id: string): Promise<VideoResponse> {
    return this.videos.find(id);
  }

  /** The JPEG thumbnail, once the video is completed. */
  @Get(':id/thumbnail')
  async thumbnail(@Param('id', { schema: VideoIdParam }) id: string, @Res() response: Response): Promise<void> {
    await send(response, await this.videos.renditionPath(id, 'thumbnail'), 'image/jpeg');
  }

  /** The H.264/AAC MP4 preview, once the video is completed; `Range` requests get 206, so a player can seek. */
  @Get(':id/preview')
  async preview(@Param('id', { schema: VideoIdParam }) id: string, @Res() response: Response): Promise<void> {
    await send(response, await this.videos.renditionPath(id, 'preview'), 'video/mp4');
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
