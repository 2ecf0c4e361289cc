import type { Response } from 'express';
import { once } from 'node:events';
import archiver from 'archiver';
import contentDisposition from 'content-disposition';
import type { FileSession } from '../../cache/FileSession.js';

/**
 * Every complete file as one zip, streamed: entries are stored (files are usually compressed
 * already and deflate would cost a core) and appended one at a time, each opened only when the
 * previous one is written, so memory and open descriptors stay flat whatever the event's size.
 * With `follow`, files still uploading are added in manifest order as they complete; if one fails
 * mid-entry the connection is cut, so the client never keeps a zip that looks whole.
 */
export async function serveZip(res: Response, session: FileSession, name: string, follow = false): Promise<void> {
  const entries = await session.zipEntries(follow);
  res.setHeader('Content-Type', 'application/zip');
  res.setHeader('Content-Disposition', contentDisposition(`${name}.zip`, { type: 'attachment' }));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'private, no-store');
  const total = entries.reduce((n, e) => n + e.node.size, 0);
  const zip = archiver('zip', { store: true, forceZip64: follow || total > 0xffff0000 });
  let failed = false;
  zip.on('warning', () => undefined);
  zip.on('error', () => {
    failed = true;
    res.destroy();
  });
  res.on('close', () => {
    if (!res.writableFinished) {
      failed = true;
      zip.abort();
    }
  });
  zip.pipe(res);
  res.flushHeaders();
  for (const e of entries) {
    if (failed) break;
    let stream;
    try {
      stream = await e.open();
    } catch {
      failed = true;
      break;
    }
    if (!stream) continue;
    stream.on('error', () => {
      failed = true;
      res.destroy();
    });
    const written = once(zip, 'entry').catch(() => undefined);
    zip.append(stream, { name: e.node.path, date: new Date(e.node.mtime), store: true });
    await Promise.race([written, once(res, 'close')]);
  }
  if (failed) res.destroy();
  else {
    await zip.finalize().catch(() => undefined);
    await Promise.race([once(res, 'finish'), once(res, 'close')]).catch(() => undefined);
  }
  session.recordZip(zip.pointer(), !failed && res.writableFinished);
}
