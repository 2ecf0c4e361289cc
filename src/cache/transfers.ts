import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Queryable } from '../db/Database.js';
import { EventsRepo } from '../db/repos/events.js';
import { FilesRepo } from '../db/repos/files.js';
import { UploadsRepo } from '../db/repos/uploads.js';
import type { EventRow, FileRow, UploadRow } from '../db/repos/rows.js';
import { GatewayError, toGatewayError } from '../shared/errors.js';
import { randomId } from '../shared/ids.js';
import { baseName, parentOf } from '../shared/paths.js';
import type { CacheDeps } from './deps.js';
import type { TempWriter } from './backends/StorageBackend.js';
import { journal, SmallCopy } from './journal.js';
import { freeBytes, usedFreeBytes } from './quotaView.js';

interface CommitOutcome {
  committed: FileRow;
  previousBlob: string | null;
  eventCompleted: boolean;
  journalId: number | null;
}

export interface WriteOptions {
  /** Total length when known (tus Upload-Length, Content-Length); null for streams and SFTP. */
  length: number | null;
  sha256: string | null;
  /** Make missing parent folders (tus, CLI); WebDAV and SFTP want a 409 / NO_SUCH_FILE instead. */
  createParents: boolean;
  /** Keep the partial upload across connections (tus); others are discarded on abort. */
  resumable: boolean;
  mtime?: number;
  /** Start from the file's current content instead of empty (SFTP OPEN without TRUNC: resume, in-place writes), when there is one. */
  keepExisting?: boolean;
  /**
   * Checked in the same lookup as everything else (SFTP OPEN's flags): refuse when a file is there
   * (CREAT|EXCL, precondition_failed), or when none is (no CREAT, not_found).
   */
  failIfExists?: boolean;
  failIfMissing?: boolean;
}

/**
 * Run inside an unregistered upload's commit: makes sure the parents exist (or fails), refuses a
 * folder in the way, and returns the row now at the path, if any.
 */
export type Placement = (tx: Queryable, now: number) => Promise<FileRow | undefined>;

export interface TransferOwner {
  who: string;
  protocol: string;
  ip: string;
}

/**
 * One upload into one path. Bytes go to a temp blob; `finish` verifies, makes them durable
 * (fsync, rename, fsync folder), then commits the file state and quota in one transaction.
 * Until then, listings and downloads keep serving the previous content (or nothing).
 */
export class Transfer {
  private writer: TempWriter | null = null;
  private hash: Hash | null;
  private hashedUpTo: number;
  /** A small file's bytes, for its commit to journal (journal.ts): uploads that start without a row only. */
  private check: SmallCopy | null = null;
  private done = false;
  /** An unregistered upload of a path that had no file: its end is announced as `removed` if it fails. */
  private startedNew = false;
  /**
   * Set by FileSession: a served or announced file was at the path when the upload began (WebDAV
   * answers 204 rather than 201). Resumable uploads leave it false.
   */
  replaces = false;
  /** Bytes of the complete file this upload replaces: they are freed at commit, so they count as room. */
  private credit = 0;

  private constructor(
    private readonly deps: CacheDeps,
    readonly upload: UploadRow,
    readonly event: EventRow,
    private readonly owner: TransferOwner,
    public offset: number,
    /**
     * Set for an upload that wrote nothing to the database when it started (`Transfer.start`): the
     * commit settles its row, parents and quota alone. Null for registered uploads (`begin`).
     */
    private readonly place: Placement | null = null,
  ) {
    // Only a declared sha256 is checked (and stored), so only then are the bytes hashed: sha256 is
    // 1.2 s of the main thread per GiB here, the largest single cost of an upload after the copy.
    this.hash = offset === 0 && upload.sha256 ? createHash('sha256') : null;
    this.hashedUpTo = 0;
  }

  get id(): string {
    return this.upload.id;
  }
  get path(): string {
    return this.upload.path;
  }
  get length(): number | null {
    return this.upload.length;
  }

  /**
   * Prepares the file row (`prepare`, in the same transaction), reserves quota and registers the
   * upload: one transaction, so a refused upload (quota, length) leaves no trace of a new file.
   */
  static async begin(deps: CacheDeps, event: EventRow, prepare: (tx: Queryable, now: number) => Promise<FileRow>, opts: WriteOptions, owner: TransferOwner): Promise<Transfer> {
    const now = Date.now();
    if (opts.length !== null && (!Number.isSafeInteger(opts.length) || opts.length < 0)) throw new GatewayError('bad_request', 'invalid length');
    const reserved = opts.length ?? 0;
    const upload: UploadRow = {
      id: randomId(26),
      completed_at: null,
      event_id: event.id,
      path: '',
      length: opts.length,
      reserved,
      offset_bytes: 0,
      sha256: null,
      protocol: owner.protocol,
      created_by: owner.who,
      created_at: now,
      updated_at: now,
    };
    const t = new Transfer(deps, upload, event, owner, 0);
    // The temp blob exists before the upload row does, so a follower that finds the row can open it.
    await t.open(true);
    let file: FileRow;
    try {
      file = await deps.db.transaction(async (tx) => {
        const row = await prepare(tx, now);
        if (row.state === 'pending' && row.size !== null && opts.length !== null && opts.length !== row.size) {
          throw new GatewayError('conflict', `${row.path} was announced with ${row.size} bytes, not ${opts.length}`);
        }
        upload.path = row.path;
        upload.sha256 = opts.sha256 ?? (row.state !== 'complete' ? row.sha256 : null);
        if (reserved > 0 && !(await new EventsRepo(tx).reserve(event.id, reserved))) {
          throw new GatewayError('quota_exceeded', 'this upload does not fit in the event quota');
        }
        await new UploadsRepo(tx).insert(upload);
        if (row.state === 'pending' || row.state === 'failed') await new FilesRepo(tx).update(row.id, { state: 'uploading', updated_at: now });
        return row;
        // Not durable: lost in a power cut, the upload never started for the client either; recovery drops its temp.
      }, { durable: false });
    } catch (err) {
      await t.writer?.close().catch(() => undefined);
      await deps.storage.discardTemp(event.id, upload.id).catch(() => undefined);
      throw err;
    }
    if (file.state === 'complete') t.credit = file.bytes;
    if (upload.sha256) t.hash = createHash('sha256');
    if (file.state === 'pending' || file.state === 'failed') {
      deps.bus.emit({ type: 'file.state', at: now, eventId: event.id, path: file.path, state: 'uploading', bytes: 0, size: opts.length ?? file.size });
    }
    deps.live.start(event.id, file.path, upload.id, opts.length ?? file.size, 0);
    if (opts.keepExisting && file.state === 'complete' && file.blob) {
      try {
        await t.seed(file.blob);
      } catch (err) {
        await t.abort(true);
        throw toGatewayError(err);
      }
    }
    return t;
  }

  /**
   * Starts an upload that nobody follows (a new or complete file, not resumable: WebDAV PUT, SFTP)
   * without touching the database: no upload row, no reservation, no state change. The commit in
   * `finish` makes the row (parents included, via `place`) and checks the quota exactly, so a small
   * file costs one transaction instead of two. A crash leaves only a temp, which the sweep removes.
   */
  static async start(deps: CacheDeps, event: EventRow, path: string, existing: FileRow | undefined, place: Placement, opts: WriteOptions, owner: TransferOwner): Promise<Transfer> {
    const now = Date.now();
    if (opts.length !== null && (!Number.isSafeInteger(opts.length) || opts.length < 0)) throw new GatewayError('bad_request', 'invalid length');
    const upload: UploadRow = {
      id: randomId(26), completed_at: null, event_id: event.id, path, length: opts.length, reserved: 0, offset_bytes: 0,
      sha256: opts.sha256, protocol: owner.protocol, created_by: owner.who, created_at: now, updated_at: now,
    };
    const t = new Transfer(deps, upload, event, owner, 0, place);
    if (!opts.keepExisting) t.check = new SmallCopy();
    if (existing?.state === 'complete') t.credit = existing.bytes;
    t.startedNew = !existing;
    // A declared length that cannot fit is refused before any byte; concurrent uploads are settled by the commit.
    if (opts.length !== null && opts.length > 0) {
      if (opts.length > (await freeBytes(deps.db, event.id)) + t.credit) {
        throw new GatewayError('quota_exceeded', 'this upload does not fit in the event quota');
      }
    }
    // Not awaited: the open is a thread-pool round trip (and a create can wait for the disk), which
    // now overlaps the client's next round trip (SFTP: OPEN's reply, then the first WRITE). The first
    // write or the commit waits for it, and a failure to create the temp is reported there.
    t.open(true, true).catch(() => undefined);
    if (!existing) deps.bus.emit({ type: 'file.state', at: now, eventId: event.id, path, state: 'uploading', bytes: 0, size: opts.length });
    deps.live.start(event.id, path, upload.id, opts.length, 0);
    if (opts.keepExisting && existing?.state === 'complete' && existing.blob) {
      try {
        await t.seed(existing.blob);
      } catch (err) {
        await t.abort(true);
        throw toGatewayError(err);
      }
    }
    return t;
  }

  /** Picks up a resumable upload (tus) after a dropped connection or a restart. */
  static async resume(deps: CacheDeps, event: EventRow, upload: UploadRow, owner: TransferOwner): Promise<Transfer> {
    const onDisk = (await deps.storage.tempSize(event.id, upload.id)) ?? 0;
    // Only acknowledged bytes count; anything past them was never confirmed to the client.
    const offset = Math.min(onDisk, upload.offset_bytes);
    const t = new Transfer(deps, upload, event, owner, offset);
    if (onDisk !== offset) await (await t.open()).truncate(offset);
    deps.live.start(event.id, upload.path, upload.id, upload.length, offset);
    return t;
  }

  /** The temp while it is being opened: `start` does not wait for it, its first user does. */
  private opening: Promise<TempWriter> | null = null;

  private open(fresh = false, ephemeral = false): Promise<TempWriter> {
    if (this.writer) return Promise.resolve(this.writer);
    this.opening ??= this.deps.storage.openTemp(this.event.id, this.upload.id, fresh, ephemeral).then(
      (writer) => {
        this.writer = writer;
        this.opening = null;
        return writer;
      },
      (err: unknown) => {
        this.opening = null;
        throw err;
      },
    );
    return this.opening;
  }

  /** Closes the temp's handle, also one still being opened (the temp itself stays). */
  private async closeWriter(): Promise<void> {
    const writer = this.writer ?? (await this.opening?.catch(() => null)) ?? null;
    this.writer = null;
    await writer?.close().catch(() => undefined);
  }

  /** Copies the current content into the temp blob, hashing it on the way. */
  private async seed(blob: string): Promise<void> {
    const writer = await this.open();
    const n = await writer.appendStream(this.deps.storage.readStream(this.event.id, blob), 0, Number.MAX_SAFE_INTEGER, this.tooMuch, (chunks) => {
      for (const c of chunks) this.hash?.update(c);
    });
    this.hashedUpTo = n;
    this.offset = n;
    this.advanceContiguous(0, n);
  }

  /** Room left for this upload: its declared length, or what the quota still allows. */
  private async limitFrom(position: number): Promise<number> {
    if (this.upload.length !== null) return this.upload.length - position;
    const free = (await freeBytes(this.deps.db, this.event.id)) + this.credit;
    return Math.max(0, free - position);
  }

  private tooMuch = () =>
    this.upload.length !== null
      ? new GatewayError('bad_request', 'more bytes than the declared upload length')
      : new GatewayError('quota_exceeded', 'this upload does not fit in the event quota');

  /**
   * Appends a stream at `position` (must equal the current offset) and returns the new offset.
   * Whatever arrived before a failure is kept, so a resumable client continues from there. With
   * `verify` (tus checksum extension) a chunk whose digest differs is discarded whole.
   */
  async append(source: Readable, position: number, verify?: { algorithm: string; expected: Buffer }): Promise<number> {
    if (position !== this.offset) throw new GatewayError('conflict', `offset ${position} does not match the upload offset ${this.offset}`);
    const writer = await this.open();
    const limit = await this.limitFrom(position);
    const hashing = this.hash !== null && this.hashedUpTo === position;
    const chunkHash = verify ? createHash(verify.algorithm) : null;
    let written = 0;
    try {
      written = await writer.appendStream(source, position, limit, this.tooMuch, (chunks, n) => {
        let at = position + written;
        for (const c of chunks) {
          if (hashing) this.hash!.update(c);
          chunkHash?.update(c);
          this.check?.add(c, at);
          at += c.length;
        }
        written = n;
        this.deps.live.progress(this.event.id, this.path, this.upload.id, position + n);
      });
    } catch (err) {
      this.check?.invalidate();
      if (chunkHash) {
        // A chunk under checksum is all or nothing.
        await writer.truncate(position);
        this.deps.live.rewind(this.event.id, this.path, this.upload.id, position);
        this.hash = hashing ? null : this.hash;
        await this.acknowledge(position);
      } else {
        if (hashing) this.hashedUpTo = position + written;
        await this.acknowledge(position + written);
      }
      throw toGatewayError(err);
    }
    if (chunkHash && !chunkHash.digest().equals(verify!.expected)) {
      await writer.truncate(position);
      this.deps.live.rewind(this.event.id, this.path, this.upload.id, position);
      if (hashing) this.hash = null;
      await this.acknowledge(position);
      throw new GatewayError('checksum_mismatch', 'chunk checksum mismatch');
    }
    if (hashing) this.hashedUpTo = position + written;
    else this.hash = null;
    await this.acknowledge(position + written);
    return this.offset;
  }

  /**
   * Offset-addressed write (SFTP); out-of-order writes are fine, gaps read as zeros until filled.
   * The digest follows the calls in the order they are made (the synchronous part below) and is
   * computed while the bytes go to disk: hashing after the write made the main thread wait for the
   * disk and then the disk for the hash (sha256 is a quarter of the main thread in a 1 GiB SFTP
   * upload; 166 -> 179 MB/s median of 9 alternating runs). A refused or failed write drops the
   * running digest; the commit then reads the bytes back. Letting consecutive WRITEs overlap as
   * well was slower and noisier on this 2-core machine (median 143 MB/s): the client's encryption,
   * our decryption and the pool's pwrites already compete for the two cores.
   */
  writeAt(data: Buffer, position: number): Promise<void> {
    if (this.hash && position === this.hashedUpTo) {
      this.hash.update(data);
      this.hashedUpTo += data.length;
    } else if (position < this.hashedUpTo) this.hash = null;
    this.check?.add(data, position);
    const stored = this.store(data, position).catch((err: unknown) => {
      this.hash = null;
      this.check?.invalidate();
      throw err;
    });
    this.storing.add(stored);
    const settle = () => this.storing.delete(stored);
    stored.then(settle, settle);
    return stored;
  }

  /** Writes not yet on disk, so `sync` covers every WRITE that was answered or is in flight. */
  private readonly storing = new Set<Promise<void>>();

  /**
   * Makes the bytes written so far durable (SFTP fsync@openssh.com). The file still becomes
   * visible only at finish, whose commit is durable in any case.
   */
  async sync(): Promise<void> {
    // A client that asks for its bytes on disk gets them there, and its CLOSE then flushes the
    // name too (the usual commit) rather than journaling a copy (journal.ts).
    this.check?.invalidate();
    await Promise.allSettled([...this.storing]);
    if (this.writer) await this.writer.sync();
  }

  private async store(data: Buffer, position: number): Promise<void> {
    const writer = await this.open();
    if (position + data.length > (await this.ceiling())) throw this.tooMuch();
    await writer.writeAt(data, position);
    this.offset = Math.max(this.offset, position + data.length);
    this.advanceContiguous(position, position + data.length);
  }

  /** Followers may read only the gap-free prefix: out-of-order writes wait as islands until it reaches them. */
  private contiguous = 0;
  private readonly islands = new Map<number, number>();
  private advanceContiguous(start: number, end: number): void {
    if (start > this.contiguous) {
      this.islands.set(start, Math.max(end, this.islands.get(start) ?? 0));
      return;
    }
    let reach = Math.max(this.contiguous, end);
    for (let merged = true; merged; ) {
      merged = false;
      for (const [s, e] of this.islands) {
        if (s <= reach) {
          reach = Math.max(reach, e);
          this.islands.delete(s);
          merged = true;
        }
      }
    }
    if (reach > this.contiguous) {
      this.contiguous = reach;
      this.deps.live.progress(this.event.id, this.path, this.upload.id, reach);
    }
  }

  /** Reads back what this upload holds so far (SFTP handles opened read-write). */
  async readAt(buffer: Buffer, position: number): Promise<number> {
    const writer = await this.open();
    if (position >= writer.size) return 0;
    return writer.readAt(buffer, position);
  }

  /** Cuts or extends (with zeros) the upload to `size` bytes (SFTP SETSTAT size, scp's in-place truncate). */
  async truncate(size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new GatewayError('bad_request', 'invalid size');
    const writer = await this.open();
    if (size > this.offset && size > (await this.ceiling())) throw this.tooMuch();
    await writer.truncate(size);
    if (size < this.hashedUpTo) this.hash = null;
    // scp sets the size it has just written: no change to the bytes.
    if (size !== this.offset) this.check?.invalidate();
    this.offset = size;
    if (size < this.contiguous) {
      this.contiguous = size;
      for (const [s, e] of this.islands) if (e > size) this.islands.delete(s);
      this.deps.live.rewind(this.event.id, this.path, this.upload.id, size);
    } else this.advanceContiguous(this.contiguous, size);
  }

  private cachedCeiling: { at: number; ceiling: number } | null = null;
  /** The size this upload may not exceed. Quota is re-read at most every second during random writes; the commit re-checks it exactly. */
  private async ceiling(): Promise<number> {
    const now = Date.now();
    if (!this.cachedCeiling || now - this.cachedCeiling.at > 1000) this.cachedCeiling = { at: now, ceiling: this.offset + (await this.limitFrom(this.offset)) };
    return this.cachedCeiling.ceiling;
  }

  private async acknowledge(offset: number): Promise<void> {
    this.offset = offset;
    if (!this.writer) return;
    // Only a resumable upload reports offsets that must survive a crash; the others are made
    // durable once, by commitTemp in finish (one fsync less per WebDAV PUT).
    if (this.upload.protocol !== 'tus') return;
    await this.writer.sync();
    await new UploadsRepo(this.deps.db).setOffset(this.upload.id, offset, Date.now());
  }

  get complete(): boolean {
    return this.upload.length !== null && this.offset === this.upload.length;
  }

  /** Verifies, makes durable and commits. After this the file is `complete` for every protocol. */
  async finish(mtime?: number): Promise<FileRow> {
    if (this.done) throw new GatewayError('conflict', 'upload already finished');
    if (this.upload.length !== null && this.offset !== this.upload.length) {
      throw new GatewayError('conflict', `upload incomplete: ${this.offset} of ${this.upload.length} bytes`);
    }
    const writer = await this.open();
    const size = writer.size;
    let actual: string | null = null;
    if (this.upload.sha256) {
      actual = await this.computeDigest(writer);
      if (actual !== this.upload.sha256) {
        await this.fail('checksum_mismatch');
        throw new GatewayError('checksum_mismatch', `sha256 mismatch for ${this.path}`);
      }
    }
    this.writer = null;
    const blob = writer.placedAs ?? randomId(26);
    const small = this.place ? (this.check?.value(size) ?? null) : null;
    const now = Date.now();
    try {
      // A small file's bytes go into the commit's transaction (journal.ts); others are flushed here.
      if (small) await writer.placeUnflushed(blob);
      else await writer.commit(blob);
    } catch (err) {
      // The caller aborts the upload, which puts its row and reservation back.
      await this.deps.storage.removeBlob(this.event.id, blob).catch(() => undefined);
      throw toGatewayError(err);
    }
    const outcome = await this.commitRow(blob, size, actual, mtime, now, small);
    if (outcome.journalId !== null) this.deps.settler.journaled(outcome.journalId);
    const { committed, previousBlob, eventCompleted } = outcome;
    this.done = true;
    this.deps.live.end(this.event.id, this.path, this.upload.id, 'complete');
    if (previousBlob) await this.deps.storage.removeBlob(this.event.id, previousBlob).catch(() => undefined);
    this.deps.bus.emit({ type: 'file.state', at: now, eventId: this.event.id, path: this.path, state: 'complete', bytes: size, size });
    if (eventCompleted) this.deps.bus.emit({ type: 'event.completed', at: now, eventId: this.event.id });
    this.deps.recorder.record({ event_id: this.event.id, at: now, who: this.owner.who, protocol: this.owner.protocol, action: 'upload', path: this.path, bytes: size, ip: this.owner.ip });
    return committed;
  }

  /**
   * The commit's transaction: the file row, the quota and the upload's bookkeeping, and for a small
   * file its bytes. A failure removes the blob and releases the upload.
   */
  private async commitRow(blob: string, size: number, actual: string | null, mtime: number | undefined, now: number, small: Buffer | null): Promise<CommitOutcome> {
    let previousBlob: string | null = null;
    let eventCompleted = false;
    let journalId: number | null = null;
    let spent = 0;
    try {
      const committed = await this.deps.db.transaction(async (tx) => {
        const files = new FilesRepo(tx);
        const row = this.place ? await this.place(tx, now) : await this.ensureRow(tx, now);
        previousBlob = row?.blob ?? null;
        const replaced = row?.state === 'complete' ? row.bytes : 0;
        const delta = size - replaced;
        spent = delta - this.upload.reserved;
        const r = await tx.run(
          'UPDATE events SET used_bytes = used_bytes + ?, reserved_bytes = MAX(0, reserved_bytes - ?) WHERE id = ? AND used_bytes + ? <= quota_bytes',
          [delta, this.upload.reserved, this.event.id, delta],
        );
        if (r.changes !== 1) throw new GatewayError('quota_exceeded', 'this upload does not fit in the event quota');
        const fields = {
          state: 'complete' as const, blob, bytes: size, size, actual_sha256: actual,
          sha256: this.upload.sha256 ?? (row && row.state !== 'complete' ? row.sha256 : null), mtime: mtime ?? now, updated_at: now,
        };
        let result: FileRow;
        if (!row) {
          // An unannounced file: its size column stays null (that column is the announced size).
          result = await files.insertComplete({ event_id: this.event.id, path: this.path, parent: parentOf(this.path), name: baseName(this.path), ...fields, size: null, now });
        } else {
          await files.update(row.id, fields);
          if (!this.place) {
            if (this.upload.protocol === 'tus') await new UploadsRepo(tx).complete(this.upload.id, size, now);
            else await new UploadsRepo(tx).remove(this.upload.id);
          }
          // Only an announced file can be the last one an event waits for.
          if (row.size !== null && this.event.completed_at === null) eventCompleted = await markIfEventComplete(tx, this.event.id, now);
          result = { ...row, ...fields };
        }
        if (small) journalId = await journal(tx, { fileId: result.id, eventId: this.event.id, blob, data: small }, now);
        return result;
      });
      usedFreeBytes(this.deps.db, this.event.id, spent);
      return { committed, previousBlob, eventCompleted, journalId };
    } catch (err) {
      await this.deps.storage.removeBlob(this.event.id, blob).catch(() => undefined);
      await this.release();
      throw err;
    }
  }

  /** The file row may have been removed or renamed away meanwhile; the upload recreates it at its path. */
  private async ensureRow(tx: Queryable, now: number): Promise<FileRow> {
    const files = new FilesRepo(tx);
    const row = await files.byPath(this.event.id, this.path);
    if (row && row.kind === 'file') return row;
    if (row) throw new GatewayError('conflict', `${this.path} is a folder`);
    const slash = this.path.lastIndexOf('/');
    const id = await files.insert({
      event_id: this.event.id, path: this.path, parent: slash < 0 ? '' : this.path.slice(0, slash), name: this.path.slice(slash + 1),
      kind: 'file', size: this.upload.length, sha256: this.upload.sha256, state: 'uploading', now,
    });
    return (await files.byId(id))!;
  }

  private async computeDigest(writer: TempWriter): Promise<string> {
    if (this.hash && this.hashedUpTo === writer.size) return this.hash.digest('hex');
    // The hash could not follow the bytes (resumed after a restart, out-of-order writes): read them once.
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (let pos = 0; pos < writer.size; ) {
      const n = await writer.readAt(buf, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
    return h.digest('hex');
  }

  private async release(outcome: 'failed' | 'aborted' = 'failed'): Promise<void> {
    await this.closeWriter();
    await this.deps.storage.discardTemp(this.event.id, this.upload.id).catch(() => undefined);
    if (!this.place) {
      await this.deps.db.transaction(async (tx) => {
        await new EventsRepo(tx).adjust(this.event.id, 0, -this.upload.reserved);
        await new UploadsRepo(tx).remove(this.upload.id);
      });
    }
    this.deps.live.end(this.event.id, this.path, this.upload.id, outcome);
    this.done = true;
  }

  /** Drops the upload: a file that never had content goes back to `pending` (or `failed`). */
  private async fail(reason: 'checksum_mismatch' | 'aborted'): Promise<void> {
    await this.release(reason === 'aborted' ? 'aborted' : 'failed');
    const now = Date.now();
    // An unregistered upload changed no row, so there is none to put back.
    const row = this.place ? undefined : await new FilesRepo(this.deps.db).byPath(this.event.id, this.path);
    if (row && row.kind === 'file' && row.state !== 'complete') {
      const state = reason === 'checksum_mismatch' ? 'failed' : row.size !== null ? 'pending' : null;
      if (state === null) await new FilesRepo(this.deps.db).remove(row.id);
      else await new FilesRepo(this.deps.db).update(row.id, { state, bytes: 0, updated_at: now });
      this.deps.bus.emit({ type: 'file.state', at: now, eventId: this.event.id, path: this.path, state: state ?? 'removed', bytes: 0, size: row.size });
    } else if (this.startedNew) {
      this.deps.bus.emit({ type: 'file.state', at: now, eventId: this.event.id, path: this.path, state: 'removed', bytes: 0, size: null });
    }
    this.deps.recorder.record({
      event_id: this.event.id, at: now, who: this.owner.who, protocol: this.owner.protocol,
      action: reason === 'checksum_mismatch' ? 'upload.failed' : 'upload.aborted', path: this.path, bytes: this.offset, ip: this.owner.ip,
    });
  }

  /** Abandons the upload (client gone, DELETE, error). Resumable uploads keep their bytes unless `discard`. */
  async abort(discard: boolean): Promise<void> {
    if (this.done) return;
    if (this.upload.protocol === 'tus' && !discard) {
      await this.closeWriter();
      this.deps.live.end(this.event.id, this.path, this.upload.id, 'paused');
      this.done = true;
      return;
    }
    await this.fail('aborted');
  }

  /** Releases file handles without ending the upload (tus request finished, upload continues later). */
  async detach(): Promise<void> {
    if (this.done) return;
    await this.closeWriter();
    this.deps.live.end(this.event.id, this.path, this.upload.id, 'paused');
  }
}

/**
 * When the last announced file turns complete, the event is complete (webhooks, live pages). Run in
 * the commit's transaction: true only for the commit that completed it.
 */
async function markIfEventComplete(tx: Queryable, eventId: string, now: number): Promise<boolean> {
  const open = await tx.get<{ n: number; total: number }>(
    "SELECT SUM(CASE WHEN state <> 'complete' THEN 1 ELSE 0 END) AS n, COUNT(*) AS total FROM files WHERE event_id = ? AND kind = 'file' AND size IS NOT NULL AND state <> 'removed'",
    [eventId],
  );
  if (!open || open.total === 0 || open.n !== 0) return false;
  return (await tx.run('UPDATE events SET completed_at = ? WHERE id = ? AND completed_at IS NULL', [now, eventId])).changes === 1;
}
