import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
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
 * again at its end, and passes through the rate limiter when one is set.
 */
export function fileReader(file: { localPath: string; size: number; mtimeMs: number }, limiter: RateLimiter | null, onChanged: (err: FileChangedError) => void) {
  return {
    async openFile() {
      await checkUnchanged(file.localPath, file.size, file.mtimeMs);
      return {
        size: file.size,
        async slice(start: number, end: number) {
          await checkUnchanged(file.localPath, file.size, file.mtimeMs);
          const raw = createReadStream(file.localPath, { start, end: Math.max(start, end - 1), highWaterMark: 256 * 1024 });
          const out = new PassThrough({ highWaterMark: 256 * 1024 });
          const piped: Readable = limiter ? raw.pipe(limiter.stream()) : raw;
          if (end <= start) raw.destroy();
          raw.on('error', (err) => out.destroy(err));
          piped.on('end', () => {
            checkUnchanged(file.localPath, file.size, file.mtimeMs).then(
              () => out.end(),
              (err: FileChangedError) => {
                onChanged(err);
                out.destroy(err);
              },
            );
          });
          piped.pipe(out, { end: false });
          if (end <= start) out.end();
          Object.assign(out, { size: end - start });
          return { value: out, done: end >= file.size, size: end - start };
        },
        close() {},
      };
    },
  };
}
