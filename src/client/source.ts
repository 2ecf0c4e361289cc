import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, pipeline, Transform, type Readable } from 'node:stream';
import type { RateLimiter } from './throttle.js';

/** The file no longer is what was announced: uploading it would mix old and new content. */
export class FileChangedError extends Error {
  override name = 'FileChangedError';
}

export async function checkUnchanged(localPath: string, size: number, mtimeMs: number): Promise<void> {
  let st;
  try {
    st = await stat(localPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileChangedError(`${localPath} vanished after it was announced; remove it from the event ("handoff rm") or put it back`);
    throw err;
  }
  if (st.size !== size) throw new FileChangedError(`${localPath} changed on disk after it was announced (${size} → ${st.size} bytes); to send the new version, "handoff rm" it from the event and "handoff add" it again`);
  if (Math.floor(st.mtimeMs) !== mtimeMs) throw new FileChangedError(`${localPath} was modified after it was announced; to send the new version, "handoff rm" it from the event and "handoff add" it again`);
}

/**
 * tus-js-client FileSource over a local path: every slice re-checks size and mtime first and
 * again before its last chunk leaves, and passes through the rate limiter when one is set.
 */
export function fileReader(file: { localPath: string; size: number; mtimeMs: number }, limiter: RateLimiter | null, onChanged: (err: FileChangedError) => void) {
  return {
    async openFile() {
      await checkUnchanged(file.localPath, file.size, file.mtimeMs);
      return {
        size: file.size,
        async slice(start: number, end: number) {
          await checkUnchanged(file.localPath, file.size, file.mtimeMs);
          if (end <= start) {
            const empty = new PassThrough();
            empty.end();
            return { value: Object.assign(empty, { size: 0 }), done: end >= file.size, size: 0 };
          }
          const raw = createReadStream(file.localPath, { start, end: end - 1, highWaterMark: 256 * 1024 });
          // The last chunk is held back until the file is checked again: the gateway completes a file
          // as soon as its last byte arrives, so a change noticed after sending it would come too late.
          let held: Buffer | null = null;
          const guard = new Transform({
            highWaterMark: 256 * 1024,
            transform(chunk: Buffer, _enc, cb) {
              const previous = held;
              held = chunk;
              cb(null, previous ?? undefined);
            },
            flush(cb) {
              checkUnchanged(file.localPath, file.size, file.mtimeMs).then(
                () => cb(null, held ?? undefined),
                (err: FileChangedError) => {
                  onChanged(err);
                  cb(err);
                },
              );
            },
          });
          // pipeline destroys every stage, and the file descriptor, when tus-js-client drops the body.
          const out: Readable = limiter ? pipeline(raw, limiter.stream(), guard, () => undefined) : pipeline(raw, guard, () => undefined);
          return { value: Object.assign(out, { size: end - start }), done: end >= file.size, size: end - start };
        },
        close() {},
      };
    },
  };
}
