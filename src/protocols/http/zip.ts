import type { Response } from 'express';
import { Readable } from 'node:stream';
import archiver from 'archiver';
import contentDisposition from 'content-disposition';
import type { FileSession } from '../../cache/FileSession.js';

/**
 * Every complete file as one zip, streamed: entries are stored (files are usually compressed
 * already and deflate would cost a core), each opened only when the archive reaches it, so memory
 * stays flat whatever the event's size. Zip64 is used when sizes require it.
 */
export async function serveZip(res: Response, session: FileSession, name: string): Promise<void> {
  const entries = await session.zipEntries();
  res.setHeader('Content-Type', 'application/zip');
  res.setHeader('Content-Disposition', contentDisposition(`${name}.zip`, { type: 'attachment' }));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'private, no-store');
  const zip = archiver('zip', { store: true, forceZip64: entries.reduce((n, e) => n + e.node.size, 0) > 0xffff0000 });
  let aborted = false;
  res.on('close', () => {
    if (!res.writableFinished) {
      aborted = true;
      zip.abort();
    }
  });
  zip.on('warning', () => undefined);
  zip.pipe(res);
  const done = new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    res.on('finish', resolve);
    res.on('close', resolve);
  });
  for (const e of entries) {
    if (aborted) break;
    zip.append(lazy(e.open), { name: e.node.path, date: new Date(e.node.mtime), store: true });
  }
  if (!aborted) await zip.finalize().catch(() => undefined);
  try {
    await done;
  } catch {
    res.destroy();
  }
  session.recordZip(zip.pointer(), !aborted && res.writableFinished);
}

/** Opens the file only when the archive starts reading it: one descriptor at a time, not one per entry. */
function lazy(open: () => Readable): Readable {
  let inner: Readable | null = null;
  const out: Readable = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      if (inner) {
        inner.resume();
        return;
      }
      inner = open();
      inner.on('data', (chunk: Buffer) => {
        if (!out.push(chunk)) inner!.pause();
      });
      inner.on('end', () => out.push(null));
      inner.on('error', (err) => out.destroy(err));
    },
    destroy(err, cb) {
      inner?.destroy();
      cb(err);
    },
  });
  return out;
}
