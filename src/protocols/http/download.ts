import type { Request, Response } from 'express';
import contentDisposition from 'content-disposition';
import rangeParser from 'range-parser';
import { pipeline } from 'node:stream/promises';
import type { Download, FileSession, NodeInfo } from '../../cache/FileSession.js';
import { GatewayError } from '../../shared/errors.js';
import { baseName } from '../../shared/paths.js';
import { followStream } from '../../cache/follow.js';
import { AlignedBuffers } from '../../shared/alignedBuffers.js';

/** Served files never render in our origin: attachment, nosniff and a sandbox CSP, whatever the name. */
export function setFileHeaders(res: Response, name: string): void {
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Disposition', contentDisposition(name, { type: 'attachment' }));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
  res.setHeader('Cache-Control', 'private, no-cache');
}

/** GET/HEAD of one file with a single Range (multi-range requests get the whole file). */
export async function serveFile(req: Request, res: Response, session: FileSession, path: string): Promise<void> {
  let node;
  try {
    node = await session.stat(path);
  } catch (err) {
    // Not complete yet: a file still arriving is followed rather than refused.
    if (err instanceof GatewayError && err.code === 'not_found' && (await session.arriving(path))) return serveFollow(req, res, session, path);
    throw err;
  }
  if (node.kind !== 'file') throw new GatewayError('not_found', `${path} is a folder`);
  await serveNode(req, res, session, node);
}

/** GET/HEAD of a complete file already looked up (the HTTP downloads and WebDAV GET share it). */
export async function serveNode(req: Request, res: Response, session: FileSession, node: NodeInfo): Promise<void> {
  const etag = `"${node.etag}"`;
  setFileHeaders(res, baseName(node.path));
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', new Date(node.mtime).toUTCString());
  res.setHeader('Accept-Ranges', 'bytes');
  if (node.sha256) res.setHeader('Repr-Digest', `sha-256=:${Buffer.from(node.sha256, 'hex').toString('base64')}:`);
  if (req.headers['if-none-match'] === etag) {
    res.status(304).end();
    return;
  }
  let range: { start: number; end: number } | null = null;
  const rangeHeader = req.headers.range;
  const ifRange = req.headers['if-range'];
  if (rangeHeader && (!ifRange || ifRange === etag)) {
    const parsed = rangeParser(node.size, rangeHeader, { combine: true });
    if (parsed === -1) {
      res.setHeader('Content-Range', `bytes */${node.size}`);
      res.status(416).end();
      return;
    }
    if (parsed !== -2 && parsed.type === 'bytes' && parsed.length === 1) range = parsed[0];
  }
  if (req.method === 'HEAD') {
    res.setHeader('Content-Length', String(node.size));
    res.status(200).end();
    return;
  }
  if (node.size === 0) range = null;
  const dl = await session.openRead(node.path, range, node);
  if (range) {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${node.size}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
  } else res.setHeader('Content-Length', String(node.size));
  await streamTo(res, dl, range ? range.end - range.start + 1 : node.size);
}

/**
 * Send buffers share a budget: one download gets 1 MiB buffers (a 1 GiB GET ran about 10 % faster
 * than with 512 KiB here), many get less each, halving down to 256 KiB, so fifty cost 25 MB, not
 * 100 MB. Three sizes only, so the pool (see AlignedBuffers) keeps few kinds.
 */
const SEND_BUDGET = 4 * 1024 * 1024;
const SEND_MIN = 256 * 1024;
const SEND_MAX = 1024 * 1024;
let activeSends = 0;
/** Page-aligned buffers for two downloads at 1 MiB or 512 KiB, four at 256 KiB (8 MiB of address space, backed as used). */
const sendBuffers = new AlignedBuffers([
  { size: SEND_MAX, count: 4 },
  { size: SEND_MAX / 2, count: 4 },
  { size: SEND_MIN, count: 8 },
]);

function sendChunk(): number {
  const share = SEND_BUDGET / 2 / (activeSends + 1);
  let size = SEND_MAX;
  while (size > SEND_MIN && size > share) size /= 2;
  return size;
}

/**
 * Sends [start, start + length) of a blob with two recycled buffers: one is read while the other is
 * being written, and a buffer is refilled only after the socket took it. Memory per download is
 * fixed (2 × sendChunk()) and no garbage is made, whatever the file size or the number of downloads.
 * A file smaller than one chunk gets buffers its own size, not pooled.
 */
async function sendBlob(res: Response, dl: Download, start: number, length: number): Promise<number> {
  const chunk = sendChunk();
  const pooled = length >= chunk;
  const size = pooled ? chunk : Math.max(1, length);
  activeSends++;
  try {
    return await sendBuffered(res, dl, start, length, size, pooled);
  } finally {
    activeSends--;
  }
}

async function sendBuffered(res: Response, dl: Download, start: number, length: number, size: number, pooled: boolean): Promise<number> {
  const reader = await dl.openReader();
  const bufs = pooled ? [sendBuffers.take(size), sendBuffers.take(size)] : [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  let drained = false;
  const closed = new Promise<never>((_, reject) => res.once('close', () => reject(new Error('client went away'))));
  closed.catch(() => undefined);
  let inFlight: Promise<void> = Promise.resolve();
  let sent = 0;
  try {
    for (let i = 0; sent < length; i ^= 1) {
      const buf = bufs[i];
      const n = await reader.read(buf, 0, Math.min(size, length - sent), start + sent);
      if (n === 0) throw new Error('blob shorter than its size');
      await Promise.race([inFlight, closed]);
      inFlight = new Promise<void>((resolve, reject) => res.write(n === buf.length ? buf : buf.subarray(0, n), (err) => (err ? reject(err) : resolve())));
      sent += n;
    }
    await Promise.race([inFlight, closed]);
    drained = true;
  } finally {
    await reader.close().catch(() => undefined);
    // After a failure a write may still hold a buffer, so those two are left to the collector.
    if (drained && pooled) for (const b of bufs) sendBuffers.give(b);
  }
  res.end();
  return sent;
}

async function streamTo(res: Response, dl: Download, expected: number): Promise<void> {
  const start = dl.range?.start ?? 0;
  try {
    await sendBlob(res, dl, start, expected);
    dl.done(expected, true);
  } catch {
    dl.done(res.socket?.bytesWritten ?? 0, false);
    res.destroy();
  }
}

/**
 * A file still uploading: bytes stored so far at once, the rest as they arrive, over one response.
 * Content-Length is the declared size, so a client sees a cut connection as a short transfer; if
 * the upload fails the connection is destroyed, never ended as if the file were whole.
 */
async function serveFollow(req: Request, res: Response, session: FileSession, path: string): Promise<void> {
  const live = await session.openFollow(path);
  setFileHeaders(res, live.name);
  res.setHeader('X-Handoff-State', 'uploading');
  if (live.sha256) res.setHeader('Repr-Digest', `sha-256=:${Buffer.from(live.sha256, 'hex').toString('base64')}:`);
  if (live.declaredSize !== null) res.setHeader('Content-Length', String(live.declaredSize));
  if (req.method === 'HEAD') {
    live.done(0, false);
    res.status(200).end();
    return;
  }
  res.status(200);
  res.flushHeaders();
  let sent = 0;
  const stream = followStream(live.follow);
  stream.on('data', (c: Buffer) => (sent += c.length));
  try {
    await pipeline(stream, res);
    live.done(sent, true);
  } catch {
    live.done(sent, false);
    res.destroy();
  }
}
