/**
 * The video work queue's throughput: the same generated videos processed by 1 and then 2 video-processor replicas
 * (ffmpeg limited to one thread each), reported side by side as jobs per minute and their ratio. Each round has
 * its own consumer group, started at the end of `video-processing`, so it sees only its own jobs. Figure 6; run
 * with `npm run bench -- work-queue`.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { openAsBlob, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { loadConfig, usersApiConfigSchema, videoProcessorConfigSchema } from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import { usersApiApp } from '../apps/users-api/src/app';
import { videoProcessorApp } from '../apps/video-processor/src/app';
import { signUp } from '../test/support/accounts';
import { testKafka } from '../test/support/broker';
import { startGroupAtEnd } from '../test/support/kafka';
import { waitFor } from '../test/support/wait';
import { makeVideo, removeTestFiles, TestVideo } from '../test/support/videos';
import { benchEnv, DATABASE_URL } from './env';
import { atLeast, runBench, writeFigure } from './lib/results';

const JOBS = Number(process.env.BENCH_VIDEO_JOBS ?? 24);
/**
 * Jobs spread over partitions by their key (the video id), and a replica owns whole partitions: with 3 partitions
 * one of 2 replicas holds two thirds of the jobs. The bench gives `video-processing` this many partitions.
 */
const PARTITIONS = Number(process.env.BENCH_VIDEO_PARTITIONS ?? 12);
const SECONDS = Number(process.env.BENCH_VIDEO_SECONDS ?? 10);

interface Round {
  /** From the first job claimed to the last one completed, as the processors' claims table recorded them. */
  seconds: number;
  /** Jobs each replica handled: a replica owns whole partitions, so the split follows the keys' hashes. */
  split: number[];
}

/**
 * One round: the videos are uploaded while no processor of the round's group runs, so the queue is full when the
 * replicas start; the clock is the claims table's, first claim to last completion — the rate at which the replicas
 * drain a backlog, with neither the uploads nor the group join inside it.
 */
async function round(
  apiUrl: string,
  /** The uploader's Authorization header: videos are their owner's, to upload and to read. */
  auth: { authorization: string },
  db: Client,
  mediaDir: string,
  replicas: number,
  videos: TestVideo[],
): Promise<Round> {
  const group = `bench-video-${replicas}-${randomUUID().slice(0, 8)}`;
  await startGroupAtEnd(group, 'video-processing');
  const ids: string[] = [];
  for (const video of videos) {
    const form = new FormData();
    form.append('file', await openAsBlob(video.path), video.name);
    const response = await fetch(`${apiUrl}/videos`, { method: 'POST', body: form, headers: auth });
    if (response.status !== 202) throw new Error(`POST /videos answered ${response.status}`);
    ids.push(((await response.json()) as { id: string }).id);
  }
  await waitFor(
    'every job to be on video-processing',
    async () =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM users_api.outbox WHERE message_key = ANY($1) AND published_at IS NOT NULL`,
          [ids],
        )
      ).rows[0].n === ids.length,
  );

  const env = benchEnv({
    MEDIA_DIR: mediaDir,
    VIDEO_CONSUMER_GROUP: group,
    FFMPEG_THREADS: '1',
    CONSUMER_CONCURRENCY: '1',
    ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
  });
  const processors: RunningApp[] = [];
  try {
    for (let i = 0; i < replicas; i++) {
      processors.push(
        await startApp(videoProcessorApp, loadConfig('video-processor', videoProcessorConfigSchema, env)),
      );
    }
    const pending = new Set(ids);
    await waitFor(
      `${ids.length} videos to be processed`,
      async () => {
        for (const id of [...pending]) {
          const answer = await fetch(`${apiUrl}/videos/${id}`, { headers: auth });
          const { status } = (await answer.json()) as { status: string };
          if (status === 'failed') throw new Error(`video ${id} failed`);
          if (status === 'completed') pending.delete(id);
        }
        return pending.size === 0;
      },
      { timeoutMs: 4 * 60_000, intervalMs: 250 }, // a round takes 15–40 s here: the whole bench stays bounded
    );
    const [{ seconds }] = (
      await db.query<{ seconds: number }>(
        `SELECT extract(epoch FROM max(completed_at) - min(claimed_at))::float AS seconds
           FROM video_processor.claims WHERE consumer_group = $1`,
        [group],
      )
    ).rows;
    return { seconds, split: processors.map((p) => p.server.stats.handled) };
  } finally {
    for (const processor of processors) await processor.app.close();
  }
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const marker = `bench-${randomUUID().slice(0, 8)}`;
  const mediaDir = join(__dirname, '..', '.run', 'bench-media', marker);
  const videos: TestVideo[] = [];
  for (let i = 0; i < JOBS; i++) videos.push(await makeVideo(`${marker}-${i}`, { seconds: SECONDS, size: '480x360' }));
  // Created here when this bench runs alone on a fresh broker; grown when earlier benches created it smaller.
  await ensureTopics(testKafka(), ALL_TOPICS, { partitions: PARTITIONS, replicationFactor: 1 });
  const admin = testKafka().admin();
  await admin.connect();
  const [topic] = (await admin.fetchTopicMetadata({ topics: ['video-processing'] })).topics;
  if (topic.partitions.length < PARTITIONS) {
    await admin.createPartitions({ topicPartitions: [{ topic: 'video-processing', count: PARTITIONS }] });
  }
  await admin.disconnect();
  const api = await startApp(
    usersApiApp,
    loadConfig(
      'users-api',
      usersApiConfigSchema,
      benchEnv({ MEDIA_DIR: mediaDir, OUTBOX_IDLE_POLL_MS: '200', AUTH_ACCESS_TOKEN_TTL_SECONDS: '7200' }),
    ),
  );
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    // Long enough for both rounds: one sign-in for the whole bench.
    const { auth } = await signUp(api.url);
    const one = await round(api.url, auth, db, mediaDir, 1, videos);
    const two = await round(api.url, auth, db, mediaDir, 2, videos);
    const perMinute = (r: Round) => (JOBS / r.seconds) * 60;
    writeFigure(
      {
        id: 'work-queue',
        figure: 6,
        title: 'Work queue scaling',
        measurements: [
          { label: `1 replica: ${JOBS} jobs`, value: one.seconds, unit: 's' },
          { label: '1 replica', value: perMinute(one), unit: 'jobs/min' },
          { label: `2 replicas: ${JOBS} jobs`, value: two.seconds, unit: 's' },
          { label: '2 replicas', value: perMinute(two), unit: 'jobs/min' },
          {
            label: `2 replicas: jobs of the busier replica (split ${two.split.join(' / ')})`,
            value: Math.max(...two.split),
            unit: 'jobs',
          },
          {
            label: "2 replicas: ceiling set by the split (jobs ÷ busier replica's)",
            value: JOBS / Math.max(...two.split),
            unit: '×',
          },
        ],
        ratios: [atLeast('jobs/min, 2 replicas ÷ 1', perMinute(two) / perMinute(one), 1.8)],
        notes: [
          `${JOBS} videos of ${SECONDS} s (480x360, H.264/AAC) → probe, thumbnail, 360p preview; ffmpeg 1 thread per ` +
            `replica; ${PARTITIONS} partitions; each round uploads first, then starts its replicas on the full queue, ` +
            'and the clock is the claims table, first claim to last completion. A replica owns whole partitions and ' +
            'jobs land on partitions by the hash of their random id, so the split between the replicas (and with it ' +
            'the ceiling) changes from run to run; the two ffmpegs also share the 2 cores with the broker and PostgreSQL.',
        ],
      },
      startedAt,
    );
  } finally {
    await db.end();
    await api.app.close();
    rmSync(mediaDir, { recursive: true, force: true });
    removeTestFiles(marker);
  }
}

runBench(main);
