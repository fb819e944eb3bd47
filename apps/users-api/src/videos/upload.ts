import { Readable, Transform, TransformCallback } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import { AppError, ValidationFailedError } from '../common/app-error';
import { detectContainer, SNIFF_BYTES } from './container';

export class UploadError extends AppError {
  override readonly name = 'UploadError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface UploadLimits {
  maxBytes: number;
  containers: readonly string[];
}

/**
 * Passes bytes through while it keeps the first SNIFF_BYTES, decides the container from them, and fails the stream
 * (so the write is abandoned and its partial file removed) when the content is not an accepted video or the size
 * goes over the limit.
 */
class VideoSniffer extends Transform {
  private head: Buffer[] = [];
  private headLength = 0;
  bytes = 0;
  container?: string;

  constructor(private readonly limits: UploadLimits) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limits.maxBytes) {
      done(new UploadError(413, 'VIDEO.TOO_LARGE', `The file is larger than ${this.limits.maxBytes} bytes`));
      return;
    }
    if (this.container === undefined) {
      this.head.push(chunk);
      this.headLength += chunk.length;
      if (this.headLength >= SNIFF_BYTES) {
        const error = this.decide();
        if (error) return done(error);
      }
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.bytes === 0) return done(new UploadError(400, 'VIDEO.EMPTY', 'The file is empty'));
    done(this.container === undefined ? this.decide() : null);
  }

  private decide(): UploadError | null {
    const found = detectContainer(Buffer.concat(this.head));
    this.head = [];
    if (!found || !this.limits.containers.includes(found)) {
      return new UploadError(
        415,
        'VIDEO.UNSUPPORTED_TYPE',
        `The file is not a video in an accepted container (${this.limits.containers.join(', ')})${found ? `: it is ${found}` : ''}`,
      );
    }
    this.container = found;
    return null;
  }
}

/**
 * Reads a `multipart/form-data` request with exactly one part, the file in field `file`, and hands its bytes to
 * `store` as they arrive (never the whole file in memory). Resolves with the container, the size and what `store`
 * returned; rejects with a 4xx UploadError or ValidationFailedError (and `store` removes what it wrote).
 */
export function receiveVideo<T>(
  request: Request,
  limits: UploadLimits,
  store: (content: Readable) => Promise<T>,
  discard: () => Promise<void>,
): Promise<{ container: string; sizeBytes: number; stored: T }> {
  if (!request.is('multipart/form-data')) {
    return Promise.reject(
      new UploadError(415, 'VIDEO.NOT_MULTIPART', 'Send the video as multipart/form-data, in the field "file"'),
    );
  }
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: request.headers, limits: { files: 1, fields: 0 } });
    } catch (error) {
      reject(new UploadError(400, 'VIDEO.MALFORMED_MULTIPART', (error as Error).message));
      return;
    }
    let settled = false;
    let work: Promise<{ container: string; sizeBytes: number; stored: T }> | undefined;
    let content: VideoSniffer | undefined;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      // A write still under way is abandoned, and the storage removes what it had written; one that already
      // finished (the form went wrong after the file) is removed here.
      content?.destroy(error instanceof Error ? error : new Error(String(error)));
      void work?.then(discard, () => undefined).catch(() => undefined);
      request.unpipe(parser);
      request.resume(); // read the rest, so the answer can be sent on a healthy connection
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    const unknownField = (name: string) =>
      new ValidationFailedError([{ field: name, message: 'unknown field: send only the video, in the field "file"' }]);

    parser.on('file', (name, file) => {
      if (name !== 'file') {
        file.resume();
        fail(unknownField(name));
        return;
      }
      const sniffer = new VideoSniffer(limits);
      content = sniffer;
      // Its error reaches us through `store` (the write pipeline); this keeps an early one from going unhandled.
      sniffer.on('error', () => undefined);
      file.on('error', (error) => sniffer.destroy(error));
      file.pipe(sniffer);
      work = store(sniffer).then((stored) => ({
        container: sniffer.container as string,
        sizeBytes: sniffer.bytes,
        stored,
      }));
      work.catch(fail);
    });
    parser.on('field', (name) => fail(unknownField(name)));
    parser.on('fieldsLimit', () => fail(unknownField('(a form field)')));
    parser.on('filesLimit', () =>
      fail(new ValidationFailedError([{ field: 'file', message: 'send exactly one file, in the field "file"' }])),
    );
    parser.on('error', (error) => fail(new UploadError(400, 'VIDEO.MALFORMED_MULTIPART', (error as Error).message)));
    parser.on('close', () => {
      if (settled) return;
      if (!work) {
        fail(new ValidationFailedError([{ field: 'file', message: 'is required: a video file' }]));
        return;
      }
      work.then((result) => {
        if (settled) return;
        settled = true;
        resolve(result);
      }, fail);
    });
    const cutOff = () => fail(new UploadError(400, 'VIDEO.UPLOAD_ABORTED', 'The upload was cut off'));
    // The client may have gone before this handler ran (guards run first): then no 'aborted' event comes.
    if (request.destroyed || request.readableAborted) return cutOff();
    request.on('aborted', cutOff);
    request.on('close', () => {
      if (!request.complete) cutOff();
    });
    request.pipe(parser);
  });
}
