import type { Readable } from 'node:stream';
import type { Queryable } from '../db/Database.js';
import { EventsRepo } from '../db/repos/events.js';
import { FilesRepo } from '../db/repos/files.js';
import { RecipientsRepo } from '../db/repos/recipients.js';
import { UploadsRepo } from '../db/repos/uploads.js';
import type { EventRow, FileRow, NodeKind } from '../db/repos/rows.js';
import { authorize, type Action } from '../auth/policy.js';
import type { Principal, RequestContext } from '../auth/principal.js';
import { GatewayError } from '../shared/errors.js';
import { ancestorsOf, baseName, canonicalPath, isWithin, parentOf } from '../shared/paths.js';
import { randomId } from '../shared/ids.js';
import type { BlobReader, ByteRange } from './backends/StorageBackend.js';
import type { CacheDeps } from './deps.js';
import { hiddenFrom, isServed } from './manifest.js';
import { forgetFreeBytes } from './quotaView.js';
import { Transfer, type WriteOptions } from './transfers.js';
import { FollowRead, activeUpload, followStream, waitForUploadStart } from './follow.js';
import { NodeMetadata } from './nodeMetadata.js';

export interface NodeInfo {
  id: number | null;
  path: string;
  name: string;
  kind: NodeKind;
  size: number;
  mtime: number;
  created: number;
  sha256: string | null;
  /** Changes whenever the content does: blob ids are never reused. */
  etag: string;
}

export interface Download {
  node: NodeInfo;
  /** The content as a stream, opened on first use. */
  readonly stream: Readable;
  /** Or a positional reader of the same blob, for senders that recycle their buffers. */
  openReader(): Promise<BlobReader>;
  range: ByteRange | null;
  /** The front-end reports how it ended, for the access log. */
  done(bytesSent: number, completed: boolean): void;
}

/** A download of a file that is still arriving (see follow.ts). */
export interface LiveDownload {
  path: string;
  name: string;
  declaredSize: number | null;
  sha256: string | null;
  follow: FollowRead;
  done(bytesSent: number, completed: boolean): void;
}

export interface RandomRead {
  node: NodeInfo;
  reader: BlobReader;
  done(bytesSent: number): void;
}

const ROOT_MTIME = 0;

export function nodeOf(row: FileRow): NodeInfo {
  return {
    id: row.id, path: row.path, name: row.name, kind: row.kind, size: row.kind === 'dir' ? 0 : row.bytes,
    mtime: row.mtime, created: row.created_at, sha256: row.sha256 ?? row.actual_sha256,
    etag: row.kind === 'dir' ? `d${row.id}` : `${row.blob ?? 'none'}`,
  };
}

/**
 * The one door to an event's files for every protocol. Each call checks the policy table, keeps
 * paths canonical and confined, enforces quota and records what it did. Front-ends translate
 * protocol requests into these calls and GatewayError codes back into protocol statuses.
 */
export class FileSession {
  constructor(
    private readonly deps: CacheDeps,
    readonly principal: Principal,
    readonly event: EventRow,
    readonly ctx: RequestContext,
  ) {}

  get eventId(): string {
    return this.event.id;
  }

  private get files(): FilesRepo {
    return new FilesRepo(this.deps.db);
  }

  private can(action: Action): void {
    authorize(this.principal, action, this.event);
    if (action !== 'list' && action !== 'read' && this.event.closed_at !== null) {
      throw new GatewayError('conflict', 'the event is closed for changes');
    }
  }

  /** Locks and dead properties (WebDAV) of this event's nodes, under the same policy. */
  metadata(): NodeMetadata {
    return new NodeMetadata(this.deps.db, this.event.id, (action) => this.can(action));
  }

  mayWrite(): boolean {
    try {
      this.can('write');
      return true;
    } catch {
      return false;
    }
  }

  private hiddenFromMe(row: FileRow): boolean {
    return hiddenFrom(this.principal, row.path);
  }

  private visible(row: FileRow | undefined): row is FileRow {
    return Boolean(row && isServed(row) && !this.hiddenFromMe(row));
  }

  private record(action: string, path: string | null, bytes: number | null): void {
    const at = Date.now();
    this.deps.recorder.record({ event_id: this.event.id, at, who: this.principal.name, protocol: this.ctx.protocol, action, path, bytes, ip: this.ctx.ip });
    if (action === 'download' || action === 'download.zip') {
      this.deps.bus.emit({ type: 'file.downloaded', at, eventId: this.event.id, path, who: this.principal.name, protocol: this.ctx.protocol, bytes: bytes ?? 0 });
    }
  }

  private rootNode(): NodeInfo {
    return { id: null, path: '', name: '', kind: 'dir', size: 0, mtime: this.event.created_at || ROOT_MTIME, created: this.event.created_at, sha256: null, etag: `r${this.event.id}` };
  }

  /** Metadata of a served entry; NOT_FOUND for anything absent, incomplete or hidden. */
  async stat(rawPath: string, opts: { arriving?: boolean } = {}): Promise<NodeInfo> {
    const node = await this.find(rawPath, opts);
    if (!node) throw new GatewayError('not_found', `${canonicalPath(rawPath)} not found`);
    return node;
  }

  /**
   * `stat` answering null where stat refuses with NOT_FOUND. Uploads probe for absence on every
   * new file, and building the error (its stack trace) cost more than the lookup itself.
   */
  async find(rawPath: string, opts: { arriving?: boolean } = {}): Promise<NodeInfo | null> {
    return (await this.probe(rawPath, opts)).node;
  }

  /**
   * One lookup for what a writer needs to know about a path: the served entry (as `find`), or else
   * the announced file not served yet (as `announced`).
   */
  async probe(rawPath: string, opts: { arriving?: boolean } = {}): Promise<{ node: NodeInfo | null; announced: NodeInfo | null }> {
    this.can('list');
    const path = canonicalPath(rawPath);
    if (path === '') return { node: this.rootNode(), announced: null };
    const row = await this.files.byPath(this.event.id, path);
    // Readers may fetch an announced file while it arrives; writers see it only once committed.
    if (opts.arriving && row && this.isArriving(row) && !this.mayWrite()) {
      return { node: { ...nodeOf(row), size: row.size ?? row.bytes, etag: `arriving-${row.id}` }, announced: null };
    }
    if (this.visible(row)) return { node: nodeOf(row), announced: null };
    return { node: null, announced: row && this.isAnnouncedOnly(row) ? nodeOf(row) : null };
  }

  /** An announced file not complete yet: downloads follow it. Unannounced uploads stay invisible until committed. */
  private isArriving(row: FileRow): boolean {
    return row.kind === 'file' && row.size !== null && !this.hiddenFromMe(row) && (row.state === 'pending' || row.state === 'uploading');
  }

  /** An announced file that is not served yet (pending, uploading, failed): its row, for locks taken before the upload. */
  async announced(rawPath: string): Promise<NodeInfo | null> {
    this.can('list');
    const path = canonicalPath(rawPath);
    if (path === '') return null;
    const row = await this.files.byPath(this.event.id, path);
    return row && this.isAnnouncedOnly(row) ? nodeOf(row) : null;
  }

  private isAnnouncedOnly(row: FileRow): boolean {
    return row.kind === 'file' && !isServed(row) && row.state !== 'removed' && !this.hiddenFromMe(row);
  }

  /** One page of a folder, in name order. `after` is the last name of the previous page. */
  async list(rawPath: string, after: string | null = null, limit = 1000): Promise<NodeInfo[]> {
    const dir = await this.stat(rawPath);
    if (dir.kind !== 'dir') throw new GatewayError('conflict', `${dir.path} is not a folder`);
    const out: NodeInfo[] = [];
    let cursor = after;
    // Hidden and incomplete rows are filtered after the query, so keep paging until the page is full.
    while (out.length < limit) {
      const rows = await this.files.children(this.event.id, dir.path, cursor, limit);
      for (const r of rows) if (this.visible(r) && out.length < limit) out.push(nodeOf(r));
      if (rows.length < limit) break;
      cursor = rows[rows.length - 1].name;
    }
    return out;
  }

  private async fileForRead(rawPath: string): Promise<FileRow> {
    this.can('read');
    const path = canonicalPath(rawPath);
    const row = path === '' ? undefined : await this.files.byPath(this.event.id, path);
    if (!row || row.kind !== 'file' || this.hiddenFromMe(row)) throw new GatewayError('not_found', `${path} not found`);
    if (row.state !== 'complete' || !row.blob) {
      throw new GatewayError('not_ready', `${path} is ${row.state}`);
    }
    return row;
  }

  /** Counts a recipient's download; a limited recipient is counted atomically before any byte is sent. */
  private async countDownload(): Promise<void> {
    if (this.principal.kind !== 'recipient') return;
    const recipients = new RecipientsRepo(this.deps.db);
    const r = await recipients.byId(this.principal.id);
    if (r?.max_downloads !== null && r?.max_downloads !== undefined) {
      if (!(await recipients.countDownload(this.principal.id, Date.now()))) {
        throw new GatewayError('forbidden', 'download limit reached');
      }
    } else this.deps.recorder.countDownload(this.principal.id, Date.now());
  }

  /**
   * Opens a complete file for reading. `statted` is what `stat` answered for the same path earlier
   * in the same request: passing it saves a second lookup on the hot download path (a file's blob
   * id is its etag, and blobs are never rewritten, so a reader of it gets exactly that version).
   */
  async openRead(rawPath: string, range: ByteRange | null = null, statted?: NodeInfo): Promise<Download> {
    this.can('read');
    const known = statted && statted.kind === 'file' && statted.id !== null && statted.path === canonicalPath(rawPath) && !statted.etag.startsWith('arriving') && statted.etag !== 'none';
    const node = known ? statted : nodeOf(await this.fileForRead(rawPath));
    const blob = node.etag;
    if (range && (range.start < 0 || range.end >= node.size || range.start > range.end)) {
      throw new GatewayError('bad_request', 'range not satisfiable');
    }
    if (!range || range.start === 0) await this.countDownload();
    // The whole file as an explicit range: the backend then sizes its read buffer to the file.
    const storage = this.deps.storage;
    const eventId = this.event.id;
    let stream: Readable | null = null;
    let reported = false;
    return {
      node,
      get stream() {
        return (stream ??= storage.readStream(eventId, blob, range ?? (node.size > 0 ? { start: 0, end: node.size - 1 } : undefined)));
      },
      openReader: () => storage.openReader(eventId, blob),
      range,
      done: (bytesSent, completed) => {
        if (reported) return;
        reported = true;
        this.record(completed ? 'download' : 'download.aborted', node.path, bytesSent);
      },
    };
  }

  /** Is this file one a follower may wait for (announced or uploading, not yet complete)? */
  async arriving(rawPath: string): Promise<boolean> {
    this.can('read');
    const path = canonicalPath(rawPath);
    const row = path === '' ? undefined : await this.files.byPath(this.event.id, path);
    return Boolean(row && this.isArriving(row));
  }

  /**
   * Follows a file that is `pending` (waits for its upload to start, bounded) or `uploading`:
   * bytes stored so far at once, the rest as it arrives, an error if the upload fails.
   */
  async openFollow(rawPath: string): Promise<LiveDownload> {
    return this.openFollowRow(rawPath, true);
  }

  private async openFollowRow(rawPath: string, count: boolean): Promise<LiveDownload> {
    this.can('read');
    const path = canonicalPath(rawPath);
    const row = path === '' ? undefined : await this.files.byPath(this.event.id, path);
    if (!row || !this.isArriving(row)) throw new GatewayError('not_found', `${path} is not arriving`);
    const limits = this.deps.follow;
    const upload = (await activeUpload(this.deps.db, this.event.id, path)) ?? (await waitForUploadStart(this.deps, this.event.id, path, limits.pendingWaitMs));
    if (!upload) throw new GatewayError('not_ready', `${path} is still ${row.state}; try again later`);
    if (!this.deps.storage.capabilities.liveRead) throw new GatewayError('not_ready', `${path} is still uploading`);
    if (count) await this.countDownload();
    const reader = await this.deps.storage.openTempReader(this.event.id, upload.id);
    const follow = new FollowRead(this.deps, this.event.id, path, upload, reader, limits);
    let reported = false;
    return {
      path, name: row.name, declaredSize: upload.length ?? row.size, sha256: upload.sha256 ?? row.sha256, follow,
      done: (bytesSent, completed) => {
        if (reported) return;
        reported = true;
        void follow.close();
        this.record(completed ? 'download' : 'download.aborted', path, bytesSent);
      },
    };
  }

  /** Offset reads (SFTP READ): one open handle, reads anywhere in the file. */
  async openRandomRead(rawPath: string): Promise<RandomRead> {
    if (await this.arriving(rawPath)) return this.openFollowRandom(rawPath);
    const row = await this.fileForRead(rawPath);
    await this.countDownload();
    const reader = await this.deps.storage.openReader(this.event.id, row.blob!);
    let reported = false;
    return {
      node: nodeOf(row),
      reader,
      done: (bytesSent) => {
        if (reported) return;
        reported = true;
        this.record(bytesSent >= row.bytes ? 'download' : 'download.partial', row.path, bytesSent);
      },
    };
  }

  /** Offset reads of a file still arriving (SFTP READ past the current end waits; a failed upload fails the read). */
  private async openFollowRandom(rawPath: string): Promise<RandomRead> {
    const live = await this.openFollowRow(rawPath, true);
    const size = live.declaredSize ?? Number.MAX_SAFE_INTEGER;
    const row = (await this.files.byPath(this.event.id, live.path))!;
    return {
      node: { ...nodeOf(row), size: live.declaredSize ?? row.bytes, etag: `arriving-${row.id}` },
      reader: { size, read: (buffer, offset, length, position) => live.follow.read(buffer, offset, length, position), close: () => live.follow.close() },
      done: (bytesSent) => live.done(bytesSent, live.declaredSize !== null && bytesSent >= live.declaredSize),
    };
  }

  /**
   * Entries for "download all": complete files in path order, each opened only when the archive
   * reaches it. With `follow`, also files still arriving, in manifest (announcement) order, each
   * waited for as it uploads; `open` answers null for a file that will not arrive (skipped).
   */
  async zipEntries(follow = false): Promise<Array<{ node: NodeInfo; open: () => Promise<Readable | null> }>> {
    this.can('read');
    const all = (await this.files.allFiles(this.event.id)).filter((r) => r.blob || follow ? !this.hiddenFromMe(r) : false);
    const rows = follow
      ? all.filter((r) => r.state === 'complete' || this.isArriving(r)).sort((a, b) => a.id - b.id)
      : all.filter((r) => r.state === 'complete' && r.blob);
    await this.countDownload();
    return rows.map((r) => ({
      node: nodeOf(r),
      open: async () => {
        const fresh = await this.files.byId(r.id);
        if (fresh?.state === 'complete' && fresh.blob) return this.deps.storage.readStream(this.event.id, fresh.blob);
        if (!follow || !fresh || (fresh.state !== 'pending' && fresh.state !== 'uploading')) return null;
        try {
          const live = await this.openFollowRow(fresh.path, false);
          return followStream(live.follow);
        } catch (err) {
          if (err instanceof GatewayError && (err.code === 'not_ready' || err.code === 'not_found')) return null;
          throw err;
        }
      },
    }));
  }

  recordZip(bytes: number, completed: boolean): void {
    this.record(completed ? 'download.zip' : 'download.zip.aborted', null, bytes);
  }

  /** Ensures the parent folder exists (creating it when asked) and that `path` is not a folder. */
  private async prepareParents(tx: Queryable, path: string, create: boolean, now: number): Promise<void> {
    const files = new FilesRepo(tx);
    for (const dir of ancestorsOf(path)) {
      const row = await files.byPath(this.event.id, dir);
      if (row && row.state !== 'removed') {
        if (row.kind !== 'dir') throw new GatewayError('conflict', `${dir} is a file`);
        continue;
      }
      if (!create) throw new GatewayError('conflict', `folder ${parentOf(path) || '/'} does not exist`);
      if (row) await files.remove(row.id);
      await files.insert({ event_id: this.event.id, path: dir, parent: parentOf(dir), name: baseName(dir), kind: 'dir', size: null, sha256: null, state: 'complete', now });
    }
  }

  /** Starts an upload to `path`; nothing is visible until `Transfer.finish`. */
  async beginWrite(rawPath: string, opts: WriteOptions): Promise<Transfer> {
    this.can('write');
    const path = canonicalPath(rawPath);
    if (path === '') throw new GatewayError('conflict', 'cannot write to the event root');
    const owner = { who: this.principal.name, protocol: this.ctx.protocol, ip: this.ctx.ip };
    if (!opts.resumable) {
      // A new or complete file has nobody following its upload: it needs no row until its commit.
      const existing = await new FilesRepo(this.deps.db).byPath(this.event.id, path);
      if (existing?.kind === 'dir' && existing.state !== 'removed') throw new GatewayError('conflict', `${path} is a folder`);
      const current = existing?.state === 'removed' ? undefined : existing;
      const replaces = Boolean(current && (isServed(current) || this.isAnnouncedOnly(current)));
      const there = this.visible(current);
      if (opts.failIfExists && there) throw new GatewayError('precondition_failed', `${path} already exists`);
      if (opts.failIfMissing && !there) throw new GatewayError('not_found', `${path} not found`);
      // Only a file one can see has content to keep (an announced one has none yet).
      if (opts.keepExisting && !there) opts = { ...opts, keepExisting: false };
      if (!current || current.state === 'complete') {
        // Read-only here (the client hears of a missing folder before it sends); the commit checks again.
        if (!opts.createParents) await this.prepareParents(this.deps.db, path, false, Date.now());
        const place = async (tx: Queryable, now: number): Promise<FileRow | undefined> => {
          const files = new FilesRepo(tx);
          await this.prepareParents(tx, path, opts.createParents, now);
          const row = await files.byPath(this.event.id, path);
          if (row?.kind === 'dir' && row.state !== 'removed') throw new GatewayError('conflict', `${path} is a folder`);
          if (row?.state !== 'removed') return row;
          await files.remove(row.id);
          return undefined;
        };
        const t = await Transfer.start(this.deps, this.event, path, current, place, opts, owner);
        t.replaces = replaces;
        return t;
      }
      const t = await Transfer.begin(this.deps, this.event, this.prepareRow(path, opts), opts, owner);
      t.replaces = replaces;
      return t;
    }
    return Transfer.begin(this.deps, this.event, this.prepareRow(path, opts), opts, owner);
  }

  /** For a registered upload: the pending row at `path`, made inside the upload's first transaction. */
  private prepareRow(path: string, opts: WriteOptions): (tx: Queryable, now: number) => Promise<FileRow> {
    return async (tx: Queryable, now: number): Promise<FileRow> => {
      const files = new FilesRepo(tx);
      await this.prepareParents(tx, path, opts.createParents, now);
      const row = await files.byPath(this.event.id, path);
      if (row?.kind === 'dir' && row.state !== 'removed') throw new GatewayError('conflict', `${path} is a folder`);
      if (row && row.state !== 'removed') return row;
      if (row) await files.remove(row.id);
      // size stays null: it is the announced size, and this file was not announced.
      const id = await files.insert({
        event_id: this.event.id, path, parent: parentOf(path), name: baseName(path), kind: 'file', size: null, sha256: opts.sha256, state: 'pending', now,
      });
      return (await files.byId(id))!;
    };
  }

  /** A resumable upload of this event, for its creator's kind of principal (owner or admin). */
  async resumeUpload(uploadId: string): Promise<Transfer> {
    this.can('write');
    const upload = await new UploadsRepo(this.deps.db).byId(uploadId);
    if (!upload || upload.event_id !== this.event.id || upload.protocol !== 'tus') throw new GatewayError('not_found', 'upload not found');
    if (upload.completed_at !== null) throw new GatewayError('conflict', 'upload already complete');
    return Transfer.resume(this.deps, this.event, upload, { who: this.principal.name, protocol: this.ctx.protocol, ip: this.ctx.ip });
  }

  async uploadInfo(uploadId: string): Promise<{ offset: number; length: number | null; path: string; sha256: string | null }> {
    this.can('write');
    const upload = await new UploadsRepo(this.deps.db).byId(uploadId);
    if (!upload || upload.event_id !== this.event.id || upload.protocol !== 'tus') throw new GatewayError('not_found', 'upload not found');
    if (upload.completed_at !== null) return { offset: upload.offset_bytes, length: upload.length, path: upload.path, sha256: upload.sha256 };
    const onDisk = (await this.deps.storage.tempSize(this.event.id, upload.id)) ?? 0;
    return { offset: Math.min(onDisk, upload.offset_bytes), length: upload.length, path: upload.path, sha256: upload.sha256 };
  }

  async mkdir(rawPath: string): Promise<NodeInfo> {
    this.can('mkdir');
    const path = canonicalPath(rawPath);
    if (path === '') throw new GatewayError('conflict', 'the root exists');
    const now = Date.now();
    const row = await this.deps.db.transaction(async (tx) => {
      const files = new FilesRepo(tx);
      await this.prepareParents(tx, path, false, now);
      const existing = await files.byPath(this.event.id, path);
      if (existing && existing.state !== 'removed') throw new GatewayError('conflict', `${path} already exists`);
      if (existing) await files.remove(existing.id);
      const id = await files.insert({ event_id: this.event.id, path, parent: parentOf(path), name: baseName(path), kind: 'dir', size: null, sha256: null, state: 'complete', now });
      return (await files.byId(id))!;
    });
    this.record('mkdir', path, null);
    return nodeOf(row);
  }

  /** Removes a file, or a folder with everything below it (`recursive`), or only if empty. */
  async remove(rawPath: string, opts: { recursive: boolean; kind?: NodeKind } = { recursive: true }): Promise<void> {
    this.can('delete');
    const path = canonicalPath(rawPath);
    if (path === '') throw new GatewayError('forbidden', 'the event root cannot be removed');
    const blobs = await this.deps.db.transaction(async (tx) => {
      const files = new FilesRepo(tx);
      const row = await files.byPath(this.event.id, path);
      if (!row || row.state === 'removed') throw new GatewayError('not_found', `${path} not found`);
      if (opts.kind && row.kind !== opts.kind) throw new GatewayError('conflict', `${path} is not a ${opts.kind === 'dir' ? 'folder' : 'file'}`);
      const rows = row.kind === 'dir' ? await files.subtree(this.event.id, path) : [row];
      if (row.kind === 'dir' && !opts.recursive && rows.some((r) => r.id !== row.id && r.state !== 'removed')) {
        throw new GatewayError('conflict', `${path} is not empty`);
      }
      return this.dropRows(tx, rows);
    });
    await this.deleteBlobs(blobs);
    this.record('delete', path, null);
  }

  /** Folders vanish; files keep a `removed` row so the manifest tells what happened to them. */
  private async dropRows(tx: Queryable, rows: FileRow[]): Promise<string[]> {
    const files = new FilesRepo(tx);
    const now = Date.now();
    let freed = 0;
    const blobs: string[] = [];
    for (const r of rows) {
      if (r.kind === 'dir') {
        await files.remove(r.id);
        continue;
      }
      if (r.blob) blobs.push(r.blob);
      if (r.state === 'complete') freed += r.bytes;
      if (r.size !== null) await files.update(r.id, { state: 'removed', blob: null, bytes: 0, updated_at: now });
      else await files.remove(r.id);
    }
    if (freed) await new EventsRepo(tx).adjust(this.event.id, -freed, 0);
    for (const r of rows) if (r.kind === 'file') this.deps.bus.emit({ type: 'file.state', at: now, eventId: this.event.id, path: r.path, state: 'removed', bytes: 0, size: r.size });
    return blobs;
  }

  /** After the transaction that dropped their rows (and freed their bytes). */
  private async deleteBlobs(blobs: string[]): Promise<void> {
    if (blobs.length) forgetFreeBytes(this.deps.db, this.event.id);
    for (const b of blobs) await this.deps.storage.removeBlob(this.event.id, b).catch(() => undefined);
  }

  /** Moves a file or folder inside the event. Returns whether something was overwritten. */
  async rename(rawFrom: string, rawTo: string, overwrite: boolean): Promise<boolean> {
    this.can('rename');
    const from = canonicalPath(rawFrom);
    const to = canonicalPath(rawTo);
    if (from === '' || to === '') throw new GatewayError('forbidden', 'the event root cannot be moved');
    if (from === to) return false;
    if (isWithin(from, to)) throw new GatewayError('conflict', 'cannot move a folder into itself');
    const now = Date.now();
    const { replaced, blobs } = await this.deps.db.transaction(async (tx) => {
      const files = new FilesRepo(tx);
      const src = await files.byPath(this.event.id, from);
      if (!src || !isServed(src)) throw new GatewayError('not_found', `${from} not found`);
      await this.prepareParents(tx, to, false, now);
      const { replaced, blobs } = await this.clearTarget(tx, to, overwrite);
      const rows = src.kind === 'dir' ? await files.subtree(this.event.id, from) : [src];
      for (const r of rows) {
        const p = to + r.path.slice(from.length);
        await files.update(r.id, { path: p, parent: parentOf(p), name: baseName(p), updated_at: now });
      }
      return { replaced, blobs };
    });
    await this.deleteBlobs(blobs);
    this.record('rename', `${from} -> ${to}`, null);
    return replaced;
  }

  private async clearTarget(tx: Queryable, to: string, overwrite: boolean): Promise<{ replaced: boolean; blobs: string[] }> {
    const files = new FilesRepo(tx);
    const dst = await files.byPath(this.event.id, to);
    if (!dst) return { replaced: false, blobs: [] };
    if (dst.state === 'removed' || (dst.kind === 'file' && !isServed(dst))) {
      if (dst.state !== 'removed' && !overwrite) throw new GatewayError('precondition_failed', `${to} exists`);
      await files.remove(dst.id);
      return { replaced: false, blobs: dst.blob ? [dst.blob] : [] };
    }
    if (!overwrite) throw new GatewayError('precondition_failed', `${to} exists`);
    const rows = dst.kind === 'dir' ? await files.subtree(this.event.id, to) : [dst];
    const blobs = await this.dropRows(tx, rows);
    for (const r of rows) if (r.kind === 'file') await files.remove(r.id);
    return { replaced: true, blobs };
  }

  /** Copies a file or folder; new blobs count against the quota. */
  async copy(rawFrom: string, rawTo: string, overwrite: boolean): Promise<boolean> {
    this.can('write');
    const from = canonicalPath(rawFrom);
    const to = canonicalPath(rawTo);
    if (from === '' || to === '') throw new GatewayError('forbidden', 'the event root cannot be copied');
    if (from === to) throw new GatewayError('forbidden', 'source and destination are the same');
    if (isWithin(from, to)) throw new GatewayError('conflict', 'cannot copy a folder into itself');
    const files = this.files;
    const src = await files.byPath(this.event.id, from);
    if (!src || !isServed(src)) throw new GatewayError('not_found', `${from} not found`);
    const rows = (src.kind === 'dir' ? await files.subtree(this.event.id, from) : [src]).filter(isServed);
    const bytes = rows.reduce((n, r) => n + (r.kind === 'file' ? r.bytes : 0), 0);
    const copies = rows.map((r) => ({ r, blob: r.kind === 'file' && r.blob ? randomId(26) : null }));
    for (const c of copies) if (c.blob) await this.deps.storage.copyBlob(this.event.id, c.r.blob!, c.blob);
    const now = Date.now();
    try {
      const { replaced, blobs } = await this.deps.db.transaction(async (tx) => {
        const f = new FilesRepo(tx);
        await this.prepareParents(tx, to, false, now);
        const cleared = await this.clearTarget(tx, to, overwrite);
        const r = await tx.run('UPDATE events SET used_bytes = used_bytes + ? WHERE id = ? AND used_bytes + reserved_bytes + ? <= quota_bytes', [
          bytes, this.event.id, bytes,
        ]);
        if (r.changes !== 1) throw new GatewayError('quota_exceeded', 'the copy does not fit in the event quota');
        for (const { r: row, blob } of copies) {
          const p = to + row.path.slice(from.length);
          const id = await f.insert({ event_id: this.event.id, path: p, parent: parentOf(p), name: baseName(p), kind: row.kind, size: row.kind === 'file' ? row.bytes : null, sha256: row.sha256, state: 'complete', now });
          if (row.kind === 'file') await f.update(id, { blob, bytes: row.bytes, actual_sha256: row.actual_sha256, mtime: row.mtime });
        }
        return cleared;
      });
      await this.deleteBlobs(blobs);
      this.record('copy', `${from} -> ${to}`, bytes);
      return replaced;
    } catch (err) {
      await this.deleteBlobs(copies.flatMap((c) => (c.blob ? [c.blob] : [])));
      throw err;
    }
  }

  async setMtime(rawPath: string, mtime: number): Promise<void> {
    this.can('write');
    const path = canonicalPath(rawPath);
    if (path === '') return;
    const row = await this.files.byPath(this.event.id, path);
    if (!this.visible(row)) throw new GatewayError('not_found', `${path} not found`);
    await this.deps.db.run('UPDATE files SET mtime = ? WHERE id = ?', [Math.trunc(mtime), row.id]);
  }
}
