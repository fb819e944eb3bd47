/**
 * The video work queue's throughput: the same generated videos processed by 1 and then 2 video-processor replicas
 * (ffmpeg limited to one thread each), reported side by side as jobs per minute and their ratio. Each round has
 * its own consumer group, started at the end of `video-processing`, so it sees only its own jobs. Run with
 * `npm run bench`.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { openAsBlob, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, usersApiConfigSchema, videoProcessorConfigSchema } from '@app/config';
import { RunningApp, startApp } from '@app/runtime';
import { usersApiApp } from '../apps/users-api/src/app';
import { videoProcessorApp } from '../apps/video-processor/src/app';
import { testKafka } from '../test/support/broker';
import { startGroupAtEnd } from '../test/support/kafka';
import { makeVideo, removeTestFiles, TestVideo } from '../test/support/videos';
import { benchEnv } from './env';

const JOBS = Number(process.env.BENCH_VIDEO_JOBS ?? 24);
/**
 * Jobs spread over partitions by their key (the video id), and a replica owns whole partitions: with 3 partitions
 * one of 2 replicas holds two thirds of the jobs. The bench gives `video-processing` this many partitions.
 */
const PARTITIONS = Number(process.env.BENCH_VIDEO_PARTITIONS ?? 12);
const SECONDS = Number(process.env.BENCH_VIDEO_SECONDS ?? 10);

async function round(apiUrl: string, mediaDir: string, replicas: number, videos: TestVideo[]): Promise<number> {
  const group = `bench-video-${replicas}-${randomUUID().slice(0, 8)}`;
  await startGroupAtEnd(group, 'video-processing');
  const env = benchEnv({
    MEDIA_DIR: mediaDir,
    VIDEO_CONSUMER_GROUP: group,
    FFMPEG_THREADS: '1',
    CONSUMER_CONCURRENCY: '1',
  });
  const processors: RunningApp[] = [];
  for (let i = 0; i < replicas; i++) {
    processors.push(await startApp(videoProcessorApp, loadConfig('video-processor', videoProcessorConfigSchema, env)));
  }
  try {
    const started = Date.now();
    const ids: string[] = [];
    for (const video of videos) {
      const form = new FormData();
      form.append('file', await openAsBlob(video.path), video.name);
      const response = await fetch(`${apiUrl}/videos`, { method: 'POST', body: form });
      if (response.status !== 202) throw new Error(`POST /videos answered ${response.status}`);
      ids.push(((await response.json()) as { id: string }).id);
    }
    const pending = new Set(ids);
    while (pending.size > 0) {
      if (Date.now() - started > 30 * 60_000) throw new Error('the work queue did not finish within 30 minutes');
      for (const id of [...pending]) {
        const { status } = (await (await fetch(`${apiUrl}/videos/${id}`)).json()) as { status: string };
        if (status === 'failed') throw new Error(`video ${id} failed`);
        if (status === 'completed') pending.delete(id);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return (Date.now() - started) / 1000;
  } finally {
    for (const processor of processors) await processor.app.close();
  }
}

async function main(): Promise<void> {
  const marker = `bench-${randomUUID().slice(0, 8)}`;
  const mediaDir = join(__dirname, '..', '.run', 'bench-media', marker);
  const videos: TestVideo[] = [];
  for (let i = 0; i < JOBS; i++) videos.push(await makeVideo(`${marker}-${i}`, { seconds: SECONDS, size: '480x360' }));
  const admin = testKafka().admin();
  await admin.connect();
  const [topic] = (await admin.fetchTopicMetadata({ topics: ['video-processing'] })).topics;
  if (topic.partitions.length < PARTITIONS) {
    await admin.createPartitions({ topicPartitions: [{ topic: 'video-processing', count: PARTITIONS }] });
  }
  await admin.disconnect();
  const api = await startApp(
    usersApiApp,
    loadConfig('users-api', usersApiConfigSchema, benchEnv({ MEDIA_DIR: mediaDir, OUTBOX_IDLE_POLL_MS: '200' })),
  );
  try {
    const one = await round(api.url, mediaDir, 1, videos);
    const two = await round(api.url, mediaDir, 2, videos);
    const perMinute = (seconds: number) => (JOBS / seconds) * 60;
    const line = (replicas: number, seconds: number) =>
      `${String(replicas).padStart(8)} ${String(JOBS).padStart(5)} ${seconds.toFixed(1).padStart(10)} ${perMinute(seconds).toFixed(1).padStart(9)}  ${(perMinute(seconds) / perMinute(one)).toFixed(2)}×`;
    process.stdout.write(
      `\nWork queue: ${JOBS} videos of ${SECONDS} s (480x360, H.264/AAC) → probe, thumbnail, 360p preview; ffmpeg 1 thread per replica; ${PARTITIONS} partitions\n` +
        `replicas  jobs  seconds  jobs/min  ratio\n${line(1, one)}\n${line(2, two)}\n`,
    );
  } finally {
    await api.app.close();
    rmSync(mediaDir, { recursive: true, force: true });
    removeTestFiles(marker);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
