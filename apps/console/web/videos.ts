import type { ConsoleSettings } from '../src/system/status';
import { el, must, pause } from './dom.js';
import { problem } from './http.js';
import type { On } from './live.js';
import type { Session } from './session.js';

interface VideoMetadata {
  durationSeconds: number;
  width: number;
  height: number;
  videoCodec: string;
}

/**
 * Upload a video → work queue, as the signed-in user: progress and the result over their own stream (nobody else
 * hears of it), the renditions from users-api.
 */
export function videoPanel(settings: ConsoleSettings, session: Session, mine: On): void {
  const progress = must<HTMLProgressElement>('#video-progress');
  const status = must('#video-status');
  const result = must('#video-result');
  const videoUrl = (id: string) => `${settings.apiUrl}/videos/${encodeURIComponent(id)}`;
  let current: string | undefined;
  /** Object URLs of the renditions shown, released when the next upload replaces them. */
  let shown: string[] = [];

  /**
   * A rendition as an object URL: only the owner may read it, and an <img> or <video> cannot send the token, so the
   * page fetches it with the token (the preview whole, which the small clips of this page allow).
   */
  async function rendition(url: string): Promise<string | undefined> {
    const response = await fetch(url, { headers: session.bearer() });
    if (!response.ok) return undefined;
    const objectUrl = URL.createObjectURL(await response.blob());
    shown.push(objectUrl);
    return objectUrl;
  }

  must<HTMLFormElement>('#video-form').addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    const form = submitted.target as HTMLFormElement;
    progress.value = 0;
    result.replaceChildren();
    for (const url of shown) URL.revokeObjectURL(url);
    shown = [];
    status.textContent = 'uploading…';
    void session.call<{ id: string }>('POST', `${settings.apiUrl}/videos`, new FormData(form)).then((answer) => {
      if (answer.status !== 202) {
        status.textContent = `refused: ${problem(answer)}`;
        return;
      }
      current = String(answer.body.id);
      status.textContent = `queued as ${current}`;
    });
  });

  mine<{ videoId: string; progress: number; stage: string }>('video.progress', (event) => {
    if (event.data.videoId !== current) return;
    progress.value = Math.max(progress.value, event.data.progress);
    status.textContent = `${event.data.stage} · ${event.data.progress}%`;
  });

  /**
   * users-api applies the result from the same event in its own group, so it may not say `completed` yet when the
   * notifier's push arrives: ask it (once a second, for a while) before showing what it serves.
   */
  async function whenCompleted(videoId: string): Promise<boolean> {
    for (let attempt = 0; attempt < 30; attempt += 1) {
      const answer = await session.call<{ status?: string }>('GET', videoUrl(videoId));
      if (answer.body.status === 'completed') return true;
      if (answer.body.status === 'failed') return false;
      await pause(1000);
    }
    return false;
  }

  mine<{ videoId: string; metadata: VideoMetadata }>('video.processed', (event) => {
    if (event.data.videoId !== current) return;
    const { durationSeconds, width, height, videoCodec } = event.data.metadata;
    const described = `${width}×${height} ${videoCodec}, ${durationSeconds.toFixed(1)} s`;
    progress.value = 100;
    status.textContent = `processed · ${described}`;
    const videoId = event.data.videoId;
    void whenCompleted(videoId).then(async (completed) => {
      if (videoId !== current) return;
      if (!completed) {
        status.textContent = 'processed, but users-api has not recorded it yet';
        return;
      }
      const [thumbnail, preview] = await Promise.all([
        rendition(`${videoUrl(videoId)}/thumbnail`),
        rendition(`${videoUrl(videoId)}/preview`),
      ]);
      if (videoId !== current) return;
      if (!thumbnail || !preview) {
        status.textContent = 'completed, but its renditions could not be read';
        return;
      }
      status.textContent = `completed · ${described}`;
      result.replaceChildren(
        el('img', { id: 'video-thumbnail', src: thumbnail, alt: 'thumbnail' }),
        el('video', { id: 'video-preview', src: preview, controls: '', preload: 'metadata' }),
      );
    });
  });

  mine<{ videoId: string; reason: string }>('video.failed', (event) => {
    if (event.data.videoId !== current) return;
    status.textContent = `failed: ${event.data.reason}`;
  });
}
