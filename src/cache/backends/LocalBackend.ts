import { constants, createReadStream, renameSync, writeSync, writevSync } from 'node:fs';
import { mkdir, open, readdir, rm, stat, statfs, copyFile, type FileHandle } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { GatewayError } from '../../shared/errors.js';
import { releasedBuffers } from '../../shared/youngGc.js';
import { isEventId } from '../../shared/ids.js';
import { InlineIo } from '../../shared/inlineIo.js';
import { AlignedBuffers } from '../../shared/alignedBuffers.js';
import { RawFile } from './rawFile.js';
import { SpareTemps } from './spareTemps.js';
import type { BlobReader, ByteRange, StorageBackend, StorageSpace, StoredItem, TempWriter } from './StorageBackend.js';

const BLOB_NAME = /^[0-9a-z][0-9a-z._-]{0,127}$/;
/** Where spares waited before they were made among the blobs (spareTemps.ts); removed if found. */
const OLD_SPARE_DIR = '.spare';
/**
 * Read buffer per download. 256 KiB, not 1 MiB: with 50 concurrent 100 MiB downloads the gateway
 * peaked at 268-292 MB RSS with 1 MiB (a buffer being read plus one queued on the socket per
 * stream) and 159-189 MB with 256 KiB, at equal or better aggregate throughput; a single download's
 * throughput and CPU per GiB showed no measurable difference on this machine.
 */
/** Read buffers share a budget: one big download gets 2 MiB chunks (throughput), fifty get less each (memory). */
const READ_BUDGET = 4 * 1024 * 1024;
const READ_MIN = 256 * 1024;
const READ_MAX = 2 * 1024 * 1024;

const FLUSH_BEHIND = 32 * 1024 * 1024;
/**
 * Writes run on the calling thread (InlineIo): they only copy into the page cache, and a 1 GiB
 * upload is CPU-bound on 2 cores (SFTP 148 -> 156 MB/s and WebDAV 234 -> 254 MB/s, medians of 9
 * alternating runs, against writes past 64 KiB on the pool). So does a temp's close; its open
 * stays on the pool (see rawFile.ts).
 */

/** Event folders kept open for commits (one descriptor each). */
const FOLDER_HANDLES = 64;

/**
 * Starts writeback while an upload goes on (a datasync every FLUSH_BEHIND bytes, one at a time,
 * not awaited), so the fsync before commit finds little left to write: it took 0.45 s per GiB at
 * the end of a 1 GiB PUT here, 0.02 s with this. Errors are left to that final fsync, which reports them.
 */
class FlushBehind {
  private unflushed = 0;
  private flushing = false;
  constructor(private readonly fh: RawFile) {}

  wrote(bytes: number): void {
    this.unflushed += bytes;
    if (this.flushing || this.unflushed < FLUSH_BEHIND) return;
    this.unflushed = 0;
    this.flushing = true;
    this.fh.datasync().catch(() => undefined).finally(() => (this.flushing = false));
  }
}

/** Staging slabs for writes that go to the thread pool (see PositionedWritable): a few page-aligned ones, reused. */
const STAGE_BYTES = 1024 * 1024;
const STAGES_KEPT = 8;
const stages = new AlignedBuffers([{ size: STAGE_BYTES, count: STAGES_KEPT }]);

/**
 * Writes a stream at a position. While writes may run on the calling thread (InlineIo), each
 * batch of chunks is one positioned writev, done before the next chunk is taken. Otherwise the
 * bytes are copied into 1 MiB staging slabs of our own, one slab written on the thread pool while
 * the next fills, and the source's chunks are let go at once: queued for the pool, Node's body
 * chunks lived long enough to be promoted, and V8 counts such external memory against the
 * old-generation limit, so a gateway that had once fallen back to the pool could run back-to-back
 * full collections for the rest of its life (--trace-gc, 2026-12-03, 2 GiB of WebDAV PUTs per
 * gateway: 82 mark-compacts and twice the CPU after one fallback, 0-2 without; with every write
 * sent to the pool, 72, 0 and 6 in three gateways before, 0, 0 and 1 with staging, and 1, 69 and
 * 66 with staging behind a 1 MiB highWaterMark).
 */
class PositionedWritable extends Writable {
  /** Bytes on disk. */
  written = 0;
  /** Bytes taken from the source: on disk, staged or being written. */
  private accepted = 0;
  private stage: Buffer | null = null;
  private staged = 0;
  private inFlight: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly fh: RawFile,
    private readonly flush: FlushBehind,
    private readonly inline: InlineIo,
    private position: number,
    private readonly limit: number,
    private readonly onLimit: () => Error,
    private readonly observe?: (chunks: Buffer[], written: number) => void,
  ) {
    // Small: what waits here while a slab is being written is Node's chunks, which should die young.
    super({ highWaterMark: 256 * 1024 });
  }

  private wrote(bufs: Buffer[], total: number): void {
    this.position += total;
    this.written += total;
    this.observe?.(bufs, this.written);
    this.flush.wrote(total);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    const total = bufs.reduce((n, b) => n + b.length, 0);
    if (this.failure) return cb(this.failure);
    if (this.accepted + total > this.limit) return cb(this.onLimit());
    this.accepted += total;
    // The source's chunks are fresh buffers (Node's HTTP parser, fs streams), let go once written or staged below.
    releasedBuffers(total);
    // Staged bytes go first, so the calling thread writes again only once they are out.
    if (this.inline.allowed && this.staged === 0 && !this.inFlight) {
      try {
        this.inline.run(() => writeAllSync(this.fh.fd, bufs, this.position));
      } catch (err) {
        return cb(err as Error);
      }
      this.wrote(bufs, total);
      return cb();
    }
    this.stageAll(bufs).then(() => cb(), (err: Error) => cb(err));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    (async () => {
      if (this.staged > 0) await this.submit();
      if (this.inFlight) await this.inFlight;
      if (this.failure) throw this.failure;
    })().then(() => cb(), (err: Error) => cb(err));
  }

  private async stageAll(bufs: Buffer[]): Promise<void> {
    for (const b of bufs) {
      for (let off = 0; off < b.length; ) {
        this.stage ??= stages.take(STAGE_BYTES);
        const n = b.copy(this.stage, this.staged, off);
        off += n;
        this.staged += n;
        if (this.staged === this.stage.length) await this.submit();
      }
    }
  }

  /** Sends the filling slab to the thread pool once the previous one is written (one in flight: in order, two slabs per upload). */
  private async submit(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    if (this.failure) throw this.failure;
    const slab = this.stage!;
    const data = slab.subarray(0, this.staged);
    this.stage = null;
    this.staged = 0;
    this.inFlight = this.writeOut(data).finally(() => {
      stages.give(slab);
      this.inFlight = null;
    });
  }

  private async writeOut(data: Buffer): Promise<void> {
    try {
      for (let done = 0; done < data.length; ) done += await this.fh.write(data, done, data.length - done, this.position + done);
      this.wrote([data], data.length);
    } catch (err) {
      this.failure = err as Error;
    }
  }
}

/**
 * A committed blob keeps its temp's mtime, and the orphan sweep goes by age: a temp last written
 * longer ago than this is touched before its commit, so the sweep cannot take it before its row lands.
 */
const TOUCH_AFTER_MS = 60_000;

/** Where a temp goes on commit, and how its folder is flushed (owned by the backend). */
interface CommitTarget {
  temp: string;
  /** The blob name the temp already has (a spare), or null. */
  placedAs: string | null;
  blobPath(blob: string): string;
  syncFolder(): Promise<void>;
  /** The temp's name is gone (renamed to its blob). */
  renamed(): void;
}

/** Positioned writes of `bufs` at `position` on the calling thread, continuing after short writes. */
function writeAllSync(fd: number, bufs: Buffer[], position: number): void {
  if (bufs.length > 1) {
    const total = bufs.reduce((n, b) => n + b.length, 0);
    const n = writevSync(fd, bufs, position);
    if (n === total) return;
    bufs = [Buffer.concat(bufs).subarray(n)];
    position += n;
  }
  const [buf] = bufs;
  for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

let alreadySynced = 0;
/** Commits that found the data already flushed (SFTP fsync@openssh.com before CLOSE): tests, diagnostics. */
export const commitsAfterSync = (): number => alreadySynced;

class LocalTempWriter implements TempWriter {
  private readonly flush: FlushBehind;
  private lastWrite = Date.now();
  /** Anything written since the last full sync: each fsync is a device cache flush here, so an unneeded one costs as much as a needed one. */
  private dirty = true;
  constructor(
    private readonly fh: RawFile,
    public size: number,
    private readonly target: CommitTarget,
    private readonly inline: InlineIo,
  ) {
    this.flush = new FlushBehind(fh);
  }

  async writeAt(data: Buffer, position: number): Promise<void> {
    this.dirty = true;
    let done = 0;
    if (this.inline.allowed) {
      this.inline.run(() => writeAllSync(this.fh.fd, [data], position));
      done = data.length;
    }
    while (done < data.length) {
      done += await this.fh.write(data, done, data.length - done, position + done);
    }
    // Again once written: a sync that began while this write was on the pool may not cover it.
    this.dirty = true;
    this.flush.wrote(data.length);
    this.lastWrite = Date.now();
    this.size = Math.max(this.size, position + data.length);
  }

  async appendStream(source: Readable, position: number, limit: number, onLimit: () => Error, observe?: (chunks: Buffer[], n: number) => void): Promise<number> {
    const sink = new PositionedWritable(this.fh, this.flush, this.inline, position, limit, onLimit, observe);
    try {
      await drainInto(source, sink);
    } finally {
      // Also after a failure: whatever part of the stream was written is unflushed.
      this.dirty = true;
      this.size = Math.max(this.size, position + sink.written);
      this.lastWrite = Date.now();
    }
    return sink.written;
  }

  async readAt(buffer: Buffer, position: number): Promise<number> {
    return this.fh.read(buffer, 0, buffer.length, position);
  }

  async truncate(size: number): Promise<void> {
    this.dirty = true;
    await this.fh.truncate(size);
    this.size = size;
  }

  async sync(): Promise<void> {
    // Cleared before the flush: a write that lands while it runs sets it again.
    this.dirty = false;
    try {
      await this.fh.sync();
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  /**
   * Renames first and then flushes the data and the folder entry at once (two fsyncs in flight, one
   * wait): the blob's name means nothing until a database row points at it, and that commit comes
   * after both flushes. A failure leaves at most an unreferenced blob, which the sweep removes.
   */
  async commit(blob: string): Promise<void> {
    try {
      await this.touchIfOld();
      this.rename(blob);
      if (!this.dirty) alreadySynced++;
      await Promise.all([this.dirty ? this.fh.sync() : undefined, this.target.syncFolder()]);
    } finally {
      await this.fh.close();
    }
  }

  async placeUnflushed(blob: string): Promise<void> {
    try {
      await this.touchIfOld();
      this.rename(blob);
    } finally {
      await this.fh.close();
    }
  }

  private async touchIfOld(): Promise<void> {
    if (Date.now() - this.lastWrite <= TOUCH_AFTER_MS) return;
    const now = new Date();
    await this.fh.utimes(now, now);
    this.dirty = true;
  }

  get placedAs(): string | null {
    return this.target.placedAs;
  }

  private rename(blob: string): void {
    if (blob !== this.target.placedAs) renameSync(this.target.temp, this.target.blobPath(blob));
    this.target.renamed();
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

export class LocalBackend implements StorageBackend {
  readonly name = 'local';
  readonly capabilities = { randomWrite: true, atomicRename: true, serverCopy: true, liveRead: true };

  /** One per backend: a stall on its disk moves all its writes to the thread pool. */
  private readonly inline = new InlineIo();

  /** Temps made ahead of demand (see spareTemps.ts). */
  private readonly spares = new SpareTemps({
    pathOf: (eventId, name) => this.blobPath(eventId, name),
    create: (path) => RawFile.open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600, this.inline),
    prepare: (eventId) => this.prepareSpares(eventId),
  });
  /** `eventId/tempId` of uploads writing to a spare, and the spare's path. */
  private readonly onSpare = new Map<string, string>();

  constructor(private readonly root: string) {}

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  /** Our own names only; anything else is a bug, refused before it can touch the disk. */
  private dir(eventId: string): string {
    if (!isEventId(eventId)) throw new GatewayError('internal', 'invalid event id for storage');
    return join(this.root, eventId);
  }

  private blobPath(eventId: string, blob: string): string {
    if (!BLOB_NAME.test(blob)) throw new GatewayError('internal', 'invalid blob name');
    return join(this.dir(eventId), blob);
  }

  private tempPath(eventId: string, tempId: string): string {
    if (!BLOB_NAME.test(tempId)) throw new GatewayError('internal', 'invalid temp name');
    return this.onSpare.get(`${eventId}/${tempId}`) ?? join(this.dir(eventId), '.partial', tempId);
  }

  /** Before an event's first spares: the folder where an earlier version kept them goes. */
  private async prepareSpares(eventId: string): Promise<void> {
    await rm(join(this.dir(eventId), OLD_SPARE_DIR), { recursive: true, force: true });
  }

  private forgetSpares(eventId: string): Promise<void> {
    for (const key of this.onSpare.keys()) if (key.startsWith(`${eventId}/`)) this.onSpare.delete(key);
    return this.spares.drop(eventId);
  }

  /**
   * Event folders whose own entry in the storage root is known durable. Creating an event does not
   * flush (its addresses are in the database, and a lost empty folder is made again by the first
   * upload); the first commit into it flushes the root once, so a committed blob never sits in a
   * folder that a power cut could take away.
   */
  private readonly durableContainers = new Set<string>();

  async createContainer(eventId: string): Promise<void> {
    await mkdir(join(this.dir(eventId), '.partial'), { recursive: true, mode: 0o700 });
  }

  async removeContainer(eventId: string): Promise<void> {
    await this.forgetSpares(eventId);
    this.durableContainers.delete(eventId);
    this.dropFolderHandle(eventId);
    await rm(this.dir(eventId), { recursive: true, force: true });
  }

  async openTemp(eventId: string, tempId: string, fresh = false, ephemeral = false): Promise<TempWriter> {
    const key = `${eventId}/${tempId}`;
    const target = (temp: string, placedAs: string | null = null) => ({
      temp,
      placedAs,
      blobPath: (blob: string) => this.blobPath(eventId, blob),
      syncFolder: () => this.syncContainer(eventId),
      renamed: () => this.onSpare.delete(key),
    });
    const spare = fresh && ephemeral ? this.spares.take(eventId) : null;
    if (spare) {
      this.onSpare.set(key, spare.path);
      return new LocalTempWriter(spare.fh, 0, target(spare.path, spare.name), this.inline);
    }
    const path = this.tempPath(eventId, tempId);
    // A fresh temp is new by construction (generated id): O_EXCL says so, and its size needs no stat.
    const flags = constants.O_RDWR | constants.O_CREAT | (fresh ? constants.O_EXCL : 0);
    let fh: RawFile;
    try {
      fh = await RawFile.open(path, flags, 0o600, this.inline);
    } catch (err) {
      // The event's folders are made on its first upload (and again if someone removed them).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(join(this.dir(eventId), '.partial'), { recursive: true, mode: 0o700 });
      await this.forgetSpares(eventId);
      this.dropFolderHandle(eventId);
      this.durableContainers.delete(eventId);
      fh = await RawFile.open(path, flags, 0o600, this.inline);
    }
    const size = fresh ? 0 : await fh.size();
    return new LocalTempWriter(fh, size, target(path), this.inline);
  }

  /**
   * Open handles of recently used event folders, so flushing a folder after a commit is one fsync
   * rather than open, fsync, close. FileHandle.close waits for operations in flight, so evicting a
   * handle that another commit is syncing is safe.
   */
  private readonly folderHandles = new Map<string, Promise<FileHandle>>();

  private async syncContainer(eventId: string): Promise<void> {
    let handle = this.folderHandles.get(eventId);
    if (handle) {
      this.folderHandles.delete(eventId);
    } else {
      handle = open(this.dir(eventId), 'r');
      handle.catch(() => this.folderHandles.delete(eventId));
      if (this.folderHandles.size >= FOLDER_HANDLES) {
        const [oldest, evicted] = this.folderHandles.entries().next().value!;
        this.folderHandles.delete(oldest);
        void evicted.then((fh) => fh.close()).catch(() => undefined);
      }
    }
    this.folderHandles.set(eventId, handle);
    await (await handle).sync();
    if (!this.durableContainers.has(eventId)) {
      await syncDir(this.root);
      this.durableContainers.add(eventId);
    }
  }

  async close(): Promise<void> {
    await this.spares.close();
    const handles = [...this.folderHandles.values()];
    this.folderHandles.clear();
    await Promise.all(handles.map((h) => h.then((fh) => fh.close()).catch(() => undefined)));
  }

  private dropFolderHandle(eventId: string): void {
    const handle = this.folderHandles.get(eventId);
    if (!handle) return;
    this.folderHandles.delete(eventId);
    void handle.then((fh) => fh.close()).catch(() => undefined);
  }

  async tempSize(eventId: string, tempId: string): Promise<number | null> {
    try {
      return (await stat(this.tempPath(eventId, tempId))).size;
    } catch {
      return null;
    }
  }

  async listTemps(eventId: string): Promise<string[]> {
    try {
      return await readdir(join(this.dir(eventId), '.partial'));
    } catch {
      return [];
    }
  }

  async openTempReader(eventId: string, tempId: string): Promise<BlobReader> {
    const fh = await open(this.tempPath(eventId, tempId), 'r');
    return {
      get size() {
        return 0;
      },
      read: async (buffer, offset, length, position) => (await fh.read(buffer, offset, length, position)).bytesRead,
      close: () => fh.close(),
    };
  }

  async discardTemp(eventId: string, tempId: string): Promise<void> {
    await rm(this.tempPath(eventId, tempId), { force: true });
    this.onSpare.delete(`${eventId}/${tempId}`);
  }

  private activeReads = 0;

  readStream(eventId: string, blob: string, range?: ByteRange): Readable {
    const share = Math.min(READ_MAX, Math.max(READ_MIN, Math.floor(READ_BUDGET / (this.activeReads + 1) / 65536) * 65536));
    // A small file gets a buffer its own size (GC pressure under many small GETs).
    const hwm = range ? Math.max(1, Math.min(share, range.end - range.start + 1)) : share;
    const stream = createReadStream(this.blobPath(eventId, blob), { start: range?.start, end: range?.end, highWaterMark: hwm });
    this.activeReads++;
    stream.once('close', () => this.activeReads--);
    return stream;
  }

  async openReader(eventId: string, blob: string): Promise<BlobReader> {
    const fh = await open(this.blobPath(eventId, blob), 'r');
    const { size } = await fh.stat();
    return {
      size,
      read: async (buffer, offset, length, position) => (await fh.read(buffer, offset, length, position)).bytesRead,
      close: () => fh.close(),
    };
  }

  async blobSize(eventId: string, blob: string): Promise<number | null> {
    try {
      return (await stat(this.blobPath(eventId, blob))).size;
    } catch {
      return null;
    }
  }

  async copyBlob(eventId: string, source: string, target: string): Promise<void> {
    const tempId = `copy-${target}`;
    const temp = this.tempPath(eventId, tempId);
    await copyFile(this.blobPath(eventId, source), temp, constants.COPYFILE_FICLONE);
    await (await this.openTemp(eventId, tempId)).commit(target);
  }

  async removeBlob(eventId: string, blob: string): Promise<void> {
    await rm(this.blobPath(eventId, blob), { force: true });
  }

  /** syncfs(2) through coreutils' `sync -f` (Node has no binding): one flush for the whole file system. */
  async flushAll(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      execFile('sync', ['-f', this.root], { timeout: 120_000 }, (err) => (err ? reject(new Error(`sync -f ${this.root} failed: ${err.message}`)) : resolve()));
    });
  }

  async listContainers(): Promise<StoredItem[]> {
    return (await listDir(this.root, true)).filter((i) => isEventId(i.name));
  }

  async listBlobs(eventId: string): Promise<StoredItem[]> {
    return (await listDir(this.dir(eventId), false)).filter((i) => BLOB_NAME.test(i.name));
  }

  /** Temps under their upload's id. (A spare is a blob by name: an aborted upload's leaves it to the sweep as an orphan blob.) */
  async listTempItems(eventId: string): Promise<StoredItem[]> {
    return listDir(join(this.dir(eventId), '.partial'), false);
  }

  async space(): Promise<StorageSpace> {
    const s = await statfs(this.root);
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  }
}

/** Entries of one kind (folders or plain files) with size and mtime; a missing folder lists as empty. */
async function listDir(path: string, dirs: boolean): Promise<StoredItem[]> {
  let entries;
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: StoredItem[] = [];
  for (const e of entries) {
    if (dirs ? !e.isDirectory() : !e.isFile()) continue;
    try {
      const s = await stat(join(path, e.name));
      out.push({ name: e.name, size: s.size, mtimeMs: s.mtimeMs });
    } catch {
      /* removed meanwhile */
    }
  }
  return out;
}

/** A rename is atomic but not durable until its folder is synced. */
async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Pipes `source` into `sink`. Unlike stream.pipeline, a source that fails (client gone mid-upload)
 * does not destroy the sink: what it already buffered is still written, then the source's error is
 * raised, so a resumable upload keeps every byte that arrived.
 */
function drainInto(source: Readable, sink: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let sourceError: Error | null = null;
    let ended = false;
    const stopSource = (err: Error) => {
      if (sourceError || ended) return;
      sourceError = err;
      source.unpipe(sink);
      sink.end();
    };
    source.once('end', () => (ended = true));
    source.once('error', stopSource);
    source.once('close', () => {
      if (!ended) stopSource(Object.assign(new Error('client disconnected'), { code: 'ECONNRESET' }));
    });
    sink.once('finish', () => (sourceError ? reject(sourceError) : resolve()));
    sink.once('error', (err) => {
      source.unpipe(sink);
      source.resume();
      reject(err);
    });
    source.pipe(sink);
  });
}
