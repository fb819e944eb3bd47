import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, openAsBlob, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { Client } from 'pg';
import { loadConfig, videoProcessorConfigSchema } from '@app/config';
import { ALL_TOPICS, createEnvelope } from '@app/contracts';
import { ensureTopics } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import { VideosService } from '../apps/users-api/src/videos/videos.service';
import { videoProcessorApp } from '../apps/video-processor/src/app';
import { Account, signUp } from './support/accounts';
import { bootUsersApi } from './support/apps';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { appEnv, TEST_DATABASE_URL } from './support/env';
import { readTopic, topicEnds, waitForDrained } from './support/kafka';
import { TcpProxy } from './support/tcp-proxy';
import { ffmpegProcessesWith, ffprobe, makeFile, makeVideo, removeTestFiles, TestVideo } from './support/videos';
import { waitFor } from './support/wait';

interface Video {
  id: string;
  status: 'pending' | 'processing' | 'completed' | 'failed';
  progress: number;
  metadata: {
    durationSeconds: number;
    width: number;
    height: number;
    videoCodec: string;
    audioCodec?: string;
    bitRate: number;
    sizeBytes: number;
  } | null;
  thumbnailUrl: string | null;
  previewUrl: string | null;
  error?: string;
  attempts: number;
}

const root = join(__dirname, '..');
const partitioner = Partitioners.DefaultPartitioner();
/** The partition of `video-processing` (3 partitions) a video's jobs land on: murmur2 of the key, like the apps. */
const partitionOf = (videoId: string) =>
  partitioner({
    topic: 'video-processing',
    partitionMetadata: [0, 1, 2].map((partitionId) => ({
      partitionId,
      leader: 0,
      replicas: [0],
      isr: [0],
      partitionErrorCode: 0,
    })),
    message: { key: videoId, value: null },
  });

/** The work queue end to end: users-api, video-processor replicas, real ffmpeg, the broker and PostgreSQL. */
describe('videos: upload, work queue, renditions', () => {
  const suffix = randomUUID().slice(0, 8);
  const mediaDir = join(root, '.run', 'test-media', suffix);
  const group = `video-processor-${suffix}`;
  const processorEnv = {
    MEDIA_DIR: mediaDir,
    VIDEO_CONSUMER_GROUP: group,
    THUMBNAIL_WIDTH: '160',
    PREVIEW_HEIGHT: '120',
    FFMPEG_THREADS: '1',
    CONSUMER_CONCURRENCY: '1',
  };
  const db = new Client({ connectionString: TEST_DATABASE_URL });
  const processors: RunningApp[] = [];
  let api: RunningApp;
  /** The uploader of every video of this suite. */
  let owner: Account;
  let clip: TestVideo;
  let silent: TestVideo;

  const startProcessor = async (overrides: Record<string, string> = {}) => {
    const config = loadConfig('video-processor', videoProcessorConfigSchema, appEnv({ ...processorEnv, ...overrides }));
    const processor = await startApp(videoProcessorApp, config);
    processors.push(processor);
    return processor;
  };
  const stopProcessors = async () => {
    for (const processor of processors.splice(0)) await processor.app.close();
  };

  async function upload(file: TestVideo, field = 'file'): Promise<Response> {
    const form = new FormData();
    form.append(field, await openAsBlob(file.path), file.name);
    return fetch(`${api.url}/videos`, { method: 'POST', body: form, headers: owner.auth });
  }

  async function submit(file: TestVideo): Promise<Video> {
    const response = await upload(file);
    expect(response.status).toBe(202);
    const video = (await response.json()) as Video;
    expect(response.headers.get('location')).toBe(`/videos/${video.id}`);
    return video;
  }

  /** A path of users-api as the owner asks for it. */
  const asOwner = (path: string, init: RequestInit = {}) =>
    fetch(`${api.url}${path}`, { ...init, headers: { ...owner.auth, ...(init.headers as Record<string, string>) } });
  const get = async (id: string) => (await (await asOwner(`/videos/${id}`)).json()) as Video;
  const settled = (id: string, timeoutMs = 90_000) =>
    waitFor(
      `video ${id} to finish`,
      async () => {
        const video = await get(id);
        return video.status === 'completed' || video.status === 'failed' ? video : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );

  /** The result events (`video.processed.v1`, `video.failed.v1`) on `video-processed` for these videos. */
  async function resultsFor(ids: string[]): Promise<{ type: string; videoId: string; processedBy?: string }[]> {
    const messages = await readTopic('video-processed', await topicEnds('video-processed'));
    return messages
      .map((m) => JSON.parse(m.value ?? '{}') as { type: string; data: { videoId: string; processedBy?: string } })
      .filter((e) => e.type !== 'video.progress.v1' && ids.includes(e.data.videoId))
      .map((e) => ({ type: e.type, videoId: e.data.videoId, processedBy: e.data.processedBy }));
  }

  async function claimOf(id: string): Promise<{ runs: number; completed: boolean; released: boolean } | undefined> {
    const { rows } = await db.query<{ runs: number; completed: boolean; released: boolean }>(
      `SELECT runs, completed_at IS NOT NULL AS completed, lease_until <= now() AS released
         FROM video_processor.claims WHERE consumer_group = $1 AND event_id IN
              (SELECT event_id FROM users_api.outbox WHERE message_key = $2 AND event_type = 'video.submitted.v1')`,
      [group, id],
    );
    return rows[0];
  }

  const uploadsOnDisk = () => (existsSync(join(mediaDir, 'uploads')) ? readdirSync(join(mediaDir, 'uploads')) : []);

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    [clip, silent] = await Promise.all([
      makeVideo(`clip-${suffix}`, { seconds: 2 }),
      makeVideo(`silent-${suffix}`, { seconds: 2, audio: false, container: 'webm' }),
    ]);
    api = await bootUsersApi({
      MEDIA_DIR: mediaDir,
      OUTBOX_IDLE_POLL_MS: '200',
      VIDEO_MAX_BYTES: String(40 * 1024 * 1024),
      // One sign-in for the whole suite, which runs longer than the default 15 minutes on a busy machine.
      AUTH_ACCESS_TOKEN_TTL_SECONDS: '7200',
    });
    await db.connect();
    owner = await signUp(api.url);
  });

  afterAll(async () => {
    await stopProcessors();
    await api?.app.close();
    await db.end();
    rmSync(mediaDir, { recursive: true, force: true });
    removeTestFiles(suffix);
  });

  it('processes an upload: metadata, a JPEG thumbnail and an H.264 preview a player can seek in', async () => {
    await startProcessor();
    const submitted = await submit(clip);
    expect(submitted).toMatchObject({ status: 'pending', progress: 0, metadata: null, thumbnailUrl: null });
    const video = await settled(submitted.id);
    expect(video).toMatchObject({ status: 'completed', progress: 100, attempts: 1 });
    expect(video.metadata).toMatchObject({ width: 320, height: 240, videoCodec: 'h264', audioCodec: 'aac' });
    expect(video.metadata?.durationSeconds).toBeCloseTo(2, 0);
    expect(video.metadata?.sizeBytes).toBeGreaterThan(0);

    const thumbnail = await asOwner(video.thumbnailUrl!);
    expect(thumbnail.status).toBe(200);
    expect(thumbnail.headers.get('content-type')).toBe('image/jpeg');
    const thumbnailFile = join(mediaDir, `thumb-${video.id}.jpg`);
    writeFileSync(thumbnailFile, Buffer.from(await thumbnail.arrayBuffer()));
    const thumb = await ffprobe(thumbnailFile);
    expect(thumb.streams[0]).toMatchObject({ codec_name: 'mjpeg', width: 160 });

    const preview = await asOwner(video.previewUrl!);
    expect(preview.status).toBe(200);
    const previewFile = join(mediaDir, `preview-${video.id}.mp4`);
    writeFileSync(previewFile, Buffer.from(await preview.arrayBuffer()));
    const probed = await ffprobe(previewFile);
    expect(probed.streams.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264', height: 120 });
    expect(probed.streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });
    const ranged = await asOwner(video.previewUrl!, { headers: { range: 'bytes=0-99' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toMatch(/^bytes 0-99\/\d+$/);
    expect((await ranged.arrayBuffer()).byteLength).toBe(100);

    // A video without audio, in WebM: no audio codec, and the preview has no audio stream either.
    const quiet = await settled((await submit(silent)).id);
    expect(quiet.status).toBe('completed');
    expect(quiet.metadata?.videoCodec).toBe('vp8');
    expect(quiet.metadata?.audioCodec).toBeUndefined();
    await stopProcessors();
  });

  it('shows progress rising while a longer video is processed', async () => {
    // About 5 s of transcoding on a fast idle core (progress is published at most once a second); 35 MB, under the
    // 40 MB limit this suite sets.
    const long = await makeVideo(`long-${suffix}`, { seconds: 120, size: '640x480' });
    await startProcessor();
    const { id } = await submit(long);
    const seen: number[] = [];
    const video = await waitFor(
      'the long video to finish',
      async () => {
        const current = await get(id);
        if (current.status === 'processing' && !seen.includes(current.progress)) seen.push(current.progress);
        return current.status === 'completed' ? current : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    expect(video.progress).toBe(100);
    const between = seen.filter((p) => p > 0 && p < 100);
    expect(between.length).toBeGreaterThanOrEqual(2);
    expect([...between].sort((a, b) => a - b)).toEqual(between); // never backwards
    process.stdout.write(`progress seen: ${seen.join(', ')}\n`);
    await stopProcessors();
  });

  it('refuses bad uploads with a 4xx and keeps nothing: no row, no event, no file', async () => {
    const count = async () =>
      (
        await db.query<{ videos: string; events: string }>(
          `SELECT (SELECT count(*) FROM users_api.videos) AS videos,
                  (SELECT count(*) FROM users_api.outbox WHERE event_type = 'video.submitted.v1') AS events`,
        )
      ).rows[0];
    const before = await count();
    const filesBefore = uploadsOnDisk().length;
    const text = makeFile(`notes-${suffix}.mp4`, 'These are meeting notes, not a video.\n'.repeat(200));
    const empty = makeFile(`empty-${suffix}.mp4`, '');
    const big = makeFile(
      `big-${suffix}.mp4`,
      Buffer.concat([Buffer.from([0, 0, 0, 0x20]), Buffer.from('ftypisom'), Buffer.alloc(41 * 1024 * 1024)]),
    );

    const cases: [string, () => Promise<Response>, number, string][] = [
      ['text renamed .mp4', () => upload(text), 415, 'VIDEO.UNSUPPORTED_TYPE'],
      ['an empty file', () => upload(empty), 400, 'VIDEO.EMPTY'],
      ['over VIDEO_MAX_BYTES', () => upload(big), 413, 'VIDEO.TOO_LARGE'],
      ['the file in another field', () => upload(clip, 'video'), 400, 'VALIDATION.FAILED'],
      ['no file at all', () => asOwner('/videos', { method: 'POST', body: new FormData() }), 400, 'VALIDATION.FAILED'],
      [
        'JSON instead of multipart',
        () => asOwner('/videos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
        415,
        'VIDEO.NOT_MULTIPART',
      ],
    ];
    for (const [what, send, status, code] of cases) {
      const response = await send();
      const body = (await response.json()) as { code: string; message: string };
      expect({ what, status: response.status, code: body.code }).toEqual({ what, status, code });
      expect(body.message.length).toBeGreaterThan(0);
    }
    expect(await count()).toEqual(before);
    expect(uploadsOnDisk()).toHaveLength(filesBefore);

    // A file whose row never committed (the process died between the write and the commit), and a half-written
    // one, are swept; files of real videos stay.
    mkdirSync(join(mediaDir, 'uploads'), { recursive: true });
    const kept = uploadsOnDisk();
    const orphan = `${randomUUID()}`;
    writeFileSync(join(mediaDir, 'uploads', orphan), 'left behind');
    writeFileSync(join(mediaDir, 'uploads', `${randomUUID()}.1a2b3c4d.part`), 'cut off');
    expect(await api.app.get(VideosService).sweepOrphans(-1)).toBe(2);
    expect(uploadsOnDisk().sort()).toEqual([...kept].sort());
  });

  it('fails a corrupt video once, with a reason, and the next job in the partition completes', async () => {
    await startProcessor();
    // An MP4 signature (so the upload is accepted) followed by text: ffprobe cannot read it.
    const corrupt = makeFile(
      `corrupt-${suffix}.mp4`,
      Buffer.concat([
        Buffer.from([0, 0, 0, 0x18]),
        Buffer.from('ftypmp42'),
        Buffer.from('not really a video\n'.repeat(300)),
      ]),
    );
    const bad = await submit(corrupt);
    // The next job of the same partition (jobs land by the hash of their id): the failure must not block it.
    let good = await submit(clip);
    while (partitionOf(good.id) !== partitionOf(bad.id)) good = await submit(clip);
    const failed = await settled(bad.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/not a readable video|no video stream/);
    expect((await settled(good.id)).status).toBe('completed');
    const results = await resultsFor([bad.id]);
    expect(results.map((r) => r.type)).toEqual(['video.failed.v1']);
    await stopProcessors();
  });

  it('two processors share the queue: 12 uploads, each processed exactly once, both did work', async () => {
    await startProcessor();
    await startProcessor();
    // 12, not 8: jobs land on partitions by their random id, and with 8 the replica holding one of the 3 partitions
    // would get none about 4% of the time ((2/3)^8); with 12, under 1%.
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await submit(clip)).id);
    for (const id of ids) expect((await settled(id)).status).toBe('completed');
    const results = await resultsFor(ids);
    expect(
      results
        .filter((r) => r.type === 'video.processed.v1')
        .map((r) => r.videoId)
        .sort(),
    ).toEqual([...ids].sort());
    const workers = new Set(results.map((r) => r.processedBy));
    expect(workers.size).toBe(2);
    const [claims] = (
      await db.query<{ runs: string }>(
        `SELECT sum(runs) AS runs FROM video_processor.claims
          WHERE consumer_group = $1 AND completed_at IS NOT NULL AND event_id IN
                (SELECT event_id FROM users_api.outbox WHERE event_type = 'video.submitted.v1' AND message_key = ANY($2))`,
        [group, ids],
      )
    ).rows;
    expect(Number(claims.runs)).toBe(12);
    await stopProcessors();
  });

  it('a processor SIGKILLed mid-job: the job completes once after the lease, and no ffmpeg outlives it', async () => {
    const long = await makeVideo(`kill-${suffix}`, { seconds: 60, size: '480x360' });
    const env = {
      ...processorEnv,
      VIDEO_LEASE_MS: '6000',
      CONSUMER_SESSION_TIMEOUT_MS: '6000',
      CONSUMER_HEARTBEAT_INTERVAL_MS: '1000',
    };
    const first = new ChildApp('video-processor', `${group}-first`, env);
    await first.start(`consuming as group ${group}`);
    try {
      const { id } = await submit(long);
      await waitFor(
        'ffmpeg to be encoding the preview',
        async () => (await ffmpegProcessesWith(`run-`)).length > 0 && (await get(id)).progress > 10,
        {
          timeoutMs: 60_000,
          intervalMs: 100,
        },
      );
      const encoders = await ffmpegProcessesWith(id);
      expect(encoders.length).toBeGreaterThan(0);
      first.signal('SIGKILL');
      await waitFor('the processor to die', () => !first.running);
      // The kernel ends the ffmpeg of a dead processor (parent-death signal): nothing keeps encoding.
      await waitFor('no ffmpeg left for the job', async () => (await ffmpegProcessesWith(id)).length === 0, {
        timeoutMs: 5000,
      });
      await startProcessor({
        VIDEO_LEASE_MS: '6000',
        CONSUMER_SESSION_TIMEOUT_MS: '6000',
        CONSUMER_HEARTBEAT_INTERVAL_MS: '1000',
      });
      const video = await settled(id, 180_000);
      expect(video.status).toBe('completed');
      const results = await resultsFor([id]);
      expect(results.map((r) => r.type)).toEqual(['video.processed.v1']);
      const claim = await claimOf(id);
      expect(claim).toMatchObject({ runs: 2, completed: true });
      // The killed run's scratch directory is gone: only the renditions are left.
      expect(readdirSync(join(mediaDir, 'videos', id)).sort()).toEqual(['preview.mp4', 'thumbnail.jpg']);
    } finally {
      await first.stop('SIGKILL');
      await stopProcessors();
    }
  });

  it('SIGTERM mid-job: ffmpeg stops, the lease is given up at once, and another replica completes the job once', async () => {
    const long = await makeVideo(`term-${suffix}`, { seconds: 60, size: '480x360' });
    const env = { ...processorEnv, VIDEO_LEASE_MS: '60000' };
    const stopping = new ChildApp('video-processor', `${group}-stopping`, env);
    await stopping.start(`consuming as group ${group}`);
    try {
      const { id } = await submit(long);
      await waitFor('the preview to be encoding', async () => (await get(id)).progress > 10, {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      const tookMs = await stopping.stop('SIGTERM');
      expect(stopping.exitCode).toBe(0);
      expect(await ffmpegProcessesWith(id)).toEqual([]);
      // Released, not held for the 60 s lease: the next replica may start at once.
      expect(await claimOf(id)).toMatchObject({ runs: 1, completed: false, released: true });
      await startProcessor();
      const video = await settled(id, 120_000);
      expect(video.status).toBe('completed');
      expect((await resultsFor([id])).map((r) => r.type)).toEqual(['video.processed.v1']);
      expect(await claimOf(id)).toMatchObject({ runs: 2, completed: true });
      process.stdout.write(`SIGTERM mid-job: exited in ${tookMs} ms\n`);
    } finally {
      await stopping.stop('SIGKILL');
      await stopProcessors();
    }
  });

  it('a processor whose database goes silent mid-job stops once its lease ran out; another completes the job once, never failed', async () => {
    const long = await makeVideo(`silentdb-${suffix}`, { seconds: 120, size: '480x360' });
    const proxy = await new TcpProxy(Number(new URL(TEST_DATABASE_URL).port || 5432)).start();
    const viaProxy = new URL(TEST_DATABASE_URL);
    viaProxy.port = String(proxy.port);
    const timing = {
      VIDEO_LEASE_MS: '6000',
      CONSUMER_SESSION_TIMEOUT_MS: '6000',
      CONSUMER_HEARTBEAT_INTERVAL_MS: '1000',
    };
    // One attempt: a run that failed now would report the video as failed, as a last attempt does.
    const cut = new ChildApp('video-processor', `${group}-cut`, {
      ...processorEnv,
      ...timing,
      DATABASE_URL: viaProxy.toString(),
      CONSUMER_MAX_ATTEMPTS: '1',
    });
    await cut.start(`consuming as group ${group}`);
    let watching = true;
    const liveScratchLost: string[] = [];
    try {
      const { id } = await submit(long);
      const dir = join(mediaDir, 'videos', id);
      const entries = () => (existsSync(dir) ? readdirSync(dir) : []);
      await waitFor('the preview to be encoding', async () => (await get(id)).progress > 10, {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      // Cut off from PostgreSQL (sockets open, nothing answers), and frozen long enough for the group to drop it.
      proxy.blackhole(true);
      cut.signal('SIGSTOP');
      await startProcessor(timing);
      await waitFor('the other processor to take the job over', async () => (await claimOf(id))?.runs === 2, {
        timeoutMs: 90_000,
        intervalMs: 200,
      });
      // The live run's scratch (run-2-…) must stay until its outputs are in place.
      const watcher = (async () => {
        let seen = false;
        while (watching) {
          const names = entries();
          const live = names.some((n) => n.startsWith('run-2-'));
          if (live) seen = true;
          else if (seen && !names.includes('preview.mp4')) liveScratchLost.push(names.join(','));
          if (names.includes('preview.mp4')) return;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      // The cut-off processor runs again: its lease has run out, and its renewals still get no answer.
      cut.signal('SIGCONT');
      const video = await settled(id, 180_000);
      await watcher;
      expect(video.status).toBe('completed');
      expect((await resultsFor([id])).map((r) => r.type)).toEqual(['video.processed.v1']);
      expect(await claimOf(id)).toMatchObject({ runs: 2, completed: true });
      expect(liveScratchLost).toEqual([]);
      await waitFor('the cut-off run to give the job up', () => /ClaimLostError/.test(cut.printed), {
        timeoutMs: 30_000,
      });
      expect(await get(id)).toMatchObject({ status: 'completed' });
      expect(entries().sort()).toEqual(['preview.mp4', 'thumbnail.jpg']);
    } finally {
      watching = false;
      await cut.stop('SIGKILL');
      await proxy.stop();
      await stopProcessors();
    }
  });

  it('ffmpeg timing out is retried, then the video fails after the last attempt, once, leaving no partial output', async () => {
    // Far more work than the timeout allows on any machine: 2 minutes at 640x480 against 1 s.
    const long = await makeVideo(`slow-${suffix}`, { seconds: 120, size: '640x480' });
    await startProcessor({ FFMPEG_TIMEOUT_MS: '1000', CONSUMER_MAX_ATTEMPTS: '2' });
    const { id } = await submit(long);
    const video = await settled(id, 120_000);
    expect(video.status).toBe('failed');
    // ffmpeg or, on a busy machine, ffprobe before it: either tool's timeout is what is retried.
    expect(video.error).toMatch(/gave up after 2 attempt\(s\): ff(mpeg|probe) ran past 1000 ms/);
    expect(video.attempts).toBe(2);
    expect((await resultsFor([id])).map((r) => r.type)).toEqual(['video.failed.v1']);
    const left = existsSync(join(mediaDir, 'videos', id)) ? readdirSync(join(mediaDir, 'videos', id)) : [];
    expect(left).toEqual([]);
    await stopProcessors();
  });

  it('a job delivered again after completion does no work; late events do not move a final state', async () => {
    await startProcessor();
    const { id } = await submit(clip);
    expect((await settled(id)).status).toBe('completed');
    const [submitted] = (
      await db.query<{ value: string; headers: Record<string, string> }>(
        `SELECT value::text AS value, headers FROM users_api.outbox WHERE message_key = $1 AND event_type = 'video.submitted.v1'`,
        [id],
      )
    ).rows;
    const producer = testKafka().producer();
    await producer.connect();
    try {
      // The same job again (a replay), and a late progress report for the finished video.
      await producer.send({
        topic: 'video-processing',
        messages: [{ key: id, value: submitted.value, headers: submitted.headers }],
      });
      const late = createEnvelope({
        type: 'video.progress.v1',
        source: 'e2e-tests',
        data: { videoId: id, progress: 40, stage: 'preview', attempt: 1 },
      });
      await producer.send({ topic: 'video-processed', messages: [{ key: id, value: JSON.stringify(late) }] });
    } finally {
      await producer.disconnect();
    }
    await waitForDrained(group, ['video-processing']);
    await waitForDrained('users-api', ['video-processed']);
    expect(await claimOf(id)).toMatchObject({ runs: 1, completed: true });
    expect((await resultsFor([id])).map((r) => r.type)).toEqual(['video.processed.v1']);
    expect(await get(id)).toMatchObject({ status: 'completed', progress: 100 });
    await stopProcessors();
  });

  it('a job whose earlier run did the work but never got its result out publishes that work without running ffmpeg', async () => {
    // The state a failed result event leaves: the outputs moved into place, no result on the topic. Made by hand here
    // (with bytes no ffmpeg run would write) before any processor sees the job.
    const { id } = await submit(clip);
    const earlier = {
      thumbnail: Buffer.from(`earlier thumbnail of ${id}`),
      preview: Buffer.from(`earlier preview of ${id}`),
    };
    mkdirSync(join(mediaDir, 'videos', id), { recursive: true });
    writeFileSync(join(mediaDir, 'videos', id, 'thumbnail.jpg'), earlier.thumbnail);
    writeFileSync(join(mediaDir, 'videos', id, 'preview.mp4'), earlier.preview);
    await startProcessor();
    const video = await settled(id);
    expect(video).toMatchObject({ status: 'completed', progress: 100 });
    expect(video.metadata).toMatchObject({ width: 320, height: 240, videoCodec: 'h264' });
    // What the earlier run left is what is served: nothing was transcoded again.
    expect(Buffer.from(await (await asOwner(video.previewUrl!)).arrayBuffer())).toEqual(earlier.preview);
    expect(Buffer.from(await (await asOwner(video.thumbnailUrl!)).arrayBuffer())).toEqual(earlier.thumbnail);
    expect((await resultsFor([id])).map((r) => r.type)).toEqual(['video.processed.v1']);
    await stopProcessors();
  });
  describe('ownership', () => {
    /** The answer to a path, without the id: an unknown id's and someone else's must be the same. */
    const answer = async (path: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${api.url}${path}`, { headers });
      const text = await response.text();
      return {
        status: response.status,
        type: response.headers.get('content-type'),
        body: text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>'),
      };
    };
    const stored = async (id?: string) => ({
      ...(
        await db.query<{ videos: number; submitted: number }>(
          `SELECT (SELECT count(*)::int FROM users_api.videos) AS videos,
                  (SELECT count(*)::int FROM users_api.outbox WHERE event_type = 'video.submitted.v1') AS submitted`,
        )
      ).rows[0],
      uploads: uploadsOnDisk().length,
      files: id && existsSync(join(mediaDir, 'videos', id)) ? readdirSync(join(mediaDir, 'videos', id)).sort() : [],
    });

    it("someone else's video, signed in or not, answers the 404 of an unknown id, on status, thumbnail and preview", async () => {
      await startProcessor();
      const video = await settled((await submit(clip)).id);
      expect(video.status).toBe('completed');
      const stranger = await signUp(api.url);
      const unknown = randomUUID();
      for (const path of ['', '/thumbnail', '/preview']) {
        const own = await answer(`/videos/${video.id}${path}`, owner.auth);
        expect({ path, status: own.status }).toEqual({ path, status: 200 });
        const none = await answer(`/videos/${unknown}${path}`, stranger.auth);
        expect(none).toMatchObject({ status: 404, body: expect.stringContaining('"code":"VIDEO.NOT_FOUND"') });
        expect({ path, ...(await answer(`/videos/${video.id}${path}`, stranger.auth)) }).toEqual({ path, ...none });
        expect({ path, ...(await answer(`/videos/${video.id}${path}`)) }).toEqual({ path, ...none });
        expect({ path, ...(await answer(`/videos/${unknown}${path}`)) }).toEqual({ path, ...none });
      }
      // A token that is sent but does not hold is refused whatever the id: that tells nothing about the video.
      const forged = { authorization: `Bearer ${owner.accessToken.slice(0, -4)}AAAA` };
      expect((await answer(`/videos/${video.id}`, forged)).status).toBe(401);
      expect((await answer(`/videos/${unknown}`, forged)).status).toBe(401);

      // The owner rides on every event of the video: the job, its progress and its result.
      const [job] = (
        await db.query<{ owner: string }>(
          `SELECT value::jsonb->'data'->>'ownerId' AS owner FROM users_api.outbox
            WHERE message_key = $1 AND event_type = 'video.submitted.v1'`,
          [video.id],
        )
      ).rows;
      expect(job.owner).toBe(owner.userId);
      const events = (await readTopic('video-processed', await topicEnds('video-processed')))
        .map((m) => JSON.parse(m.value ?? '{}') as { type: string; data: { videoId: string; ownerId?: string } })
        .filter((e) => e.data.videoId === video.id);
      expect(events.map((e) => e.type)).toContain('video.processed.v1');
      expect(events.map((e) => e.type)).toContain('video.progress.v1');
      expect(events.filter((e) => e.data.ownerId !== owner.userId)).toEqual([]);
      await stopProcessors();
    });

    it('an upload without a token (a cross-site no-cors form post cannot send one) is refused 401: nothing stored or published', async () => {
      const before = await stored();
      const form = new FormData();
      form.append('file', await openAsBlob(clip.path), clip.name);
      // What a page of another site can send without a preflight: a form, with the user's cookies, no Authorization.
      const response = await fetch(`${api.url}/videos`, {
        method: 'POST',
        body: form,
        headers: {
          origin: 'https://elsewhere.example',
          cookie: 'session=from-the-browser',
          'sec-fetch-mode': 'no-cors',
        },
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(await response.json()).toMatchObject({ code: 'AUTH.TOKEN_MISSING' });
      expect(await stored()).toEqual(before);
    });

    it('deleting a video: 204, its status 404 at once, its upload and renditions removed, a second delete 404', async () => {
      await startProcessor();
      const video = await settled((await submit(clip)).id);
      expect(video.status).toBe('completed');
      expect((await stored(video.id)).files).toEqual(['preview.mp4', 'thumbnail.jpg']);
      expect(existsSync(join(mediaDir, 'uploads', video.id))).toBe(true);

      // Not the owner: the same 404 as for an unknown id, and nothing is removed or published.
      const stranger = await signUp(api.url);
      const refused = await fetch(`${api.url}/videos/${video.id}`, { method: 'DELETE', headers: stranger.auth });
      expect(refused.status).toBe(404);
      expect(await refused.json()).toMatchObject({ code: 'VIDEO.NOT_FOUND' });
      expect((await fetch(`${api.url}/videos/${video.id}`, { method: 'DELETE' })).status).toBe(401);
      expect((await get(video.id)).status).toBe('completed');

      const removed = await asOwner(`/videos/${video.id}`, { method: 'DELETE' });
      expect(removed.status).toBe(204);
      expect((await asOwner(`/videos/${video.id}`)).status).toBe(404);
      expect((await asOwner(`/videos/${video.id}/preview`)).status).toBe(404);
      await waitFor(
        'the upload and the renditions to be removed',
        () => !existsSync(join(mediaDir, 'uploads', video.id)) && !existsSync(join(mediaDir, 'videos', video.id)),
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const second = await asOwner(`/videos/${video.id}`, { method: 'DELETE' });
      expect(second.status).toBe(404);
      const deleted = (
        await db.query<{ data: { videoId: string; ownerId: string; sourceKey: string } }>(
          `SELECT value::jsonb->'data' AS data FROM users_api.outbox WHERE message_key = $1 AND event_type = 'video.deleted.v1'`,
          [video.id],
        )
      ).rows;
      expect(deleted.map((row) => row.data)).toEqual([
        expect.objectContaining({ videoId: video.id, ownerId: owner.userId, sourceKey: `uploads/${video.id}` }),
      ]);
      await stopProcessors();
    });

    it('deleting a video while it is processed stops its job: ffmpeg ends, nothing is left, no result is published', async () => {
      const long = await makeVideo(`deleted-${suffix}`, { seconds: 60, size: '480x360' });
      await startProcessor();
      const { id } = await submit(long);
      await waitFor(
        'ffmpeg to be encoding the preview',
        async () => (await ffmpegProcessesWith(id)).length > 0 && (await get(id)).progress > 10,
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      expect((await asOwner(`/videos/${id}`, { method: 'DELETE' })).status).toBe(204);
      await waitFor('ffmpeg to be stopped', async () => (await ffmpegProcessesWith(id)).length === 0, {
        timeoutMs: 15_000,
        intervalMs: 100,
      });
      await waitFor(
        'the upload and the outputs to be removed',
        () => !existsSync(join(mediaDir, 'uploads', id)) && !existsSync(join(mediaDir, 'videos', id)),
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      await waitForDrained(group, ['video-processing']);
      // The job is over (its claim completed), and it reported nothing: neither processed nor failed.
      expect(await claimOf(id)).toMatchObject({ runs: 1, completed: true });
      expect(await resultsFor([id])).toEqual([]);
      expect((await asOwner(`/videos/${id}`)).status).toBe(404);
      await stopProcessors();
    });
  });
});
