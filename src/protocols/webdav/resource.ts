import type { Readable } from 'node:stream';
import type { Lock, Resource, User } from 'nephele';
import { nodeOf, type FileSession, type NodeInfo } from '../../cache/FileSession.js';
import type { FileRow } from '../../db/repos/rows.js';
import type { Transfer } from '../../cache/transfers.js';
import type { LockRecord } from '../../cache/nodeMetadata.js';
import { baseName } from '../../shared/paths.js';
import type { EventAdapter } from './adapter.js';
import { principalOf } from './authenticator.js';
import { asDavError, dav } from './errors.js';
import { DbLock } from './lock.js';
import { EventProperties } from './properties.js';

const LIST_PAGE = 1000;

/** The request's declared body length, when it is the length of the stored bytes. */
function declaredLength(headers: Record<string, string | string[] | undefined>): number | null {
  if (headers['content-encoding'] && headers['content-encoding'] !== 'identity') return null;
  const v = headers['content-length'];
  return typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : null;
}

/** The upload of a PUT body (not yet read): the quick PUT begins it itself, to decide whether the request is its own. */
export function beginPut(session: FileSession, path: string, headers: Record<string, string | string[] | undefined>): Promise<Transfer> {
  return session.beginWrite(path, { length: declaredLength(headers), sha256: null, createParents: false, resumable: false });
}

/** ownCloud-style `X-OC-Mtime: <unix seconds>` (rclone, some sync clients). */
function requestedMtime(headers: Record<string, string | string[] | undefined>): number | undefined {
  const v = headers['x-oc-mtime'];
  if (typeof v !== 'string' || !/^\d{1,12}(\.\d+)?$/.test(v)) return undefined;
  return Math.round(Number(v) * 1000);
}

/**
 * A PUT body into `path` through the one write path (temp blob, fsync, rename, commit), for
 * nephele's PUT and for the quick PUT in front of it; an abort keeps the old content.
 */
export async function writeBody(
  session: FileSession, path: string, input: Readable, headers: Record<string, string | string[] | undefined>, response: { set(field: string, value: string): unknown },
  begun?: Transfer,
): Promise<FileRow> {
  const mtime = requestedMtime(headers);
  const transfer = begun ?? (await dav(() => beginPut(session, path, headers)));
  let committed: FileRow;
  try {
    await transfer.append(input, 0);
    committed = await transfer.finish(mtime);
  } catch (err) {
    await transfer.abort(true).catch(() => undefined);
    throw asDavError(err);
  }
  if (mtime !== undefined) response.set('X-OC-Mtime', 'accepted');
  return committed;
}

/** A file or folder of the event, over FileSession. `node` is null for a resource about to be created. */
export class EventResource implements Resource {
  readonly baseUrl: URL;

  constructor(
    readonly adapter: EventAdapter,
    readonly path: string,
    public node: NodeInfo | null,
    private readonly wantCollection = false,
    /** Set for the folders above the event root: empty, never locked. */
    private readonly above: URL | null = null,
    /** The row of an announced file not uploaded yet: locks attach to it, content does not exist. */
    private readonly pendingId: number | null = null,
  ) {
    this.baseUrl = adapter.baseUrl;
  }

  get fileId(): number | null {
    return this.path === '' ? null : (this.node?.id ?? this.pendingId);
  }

  /** Whether locks can be stored for it (the resource or its announced row is there). */
  get exists(): boolean {
    return this.path === '' || this.node !== null || this.pendingId !== null;
  }

  private session() {
    return this.adapter.session();
  }

  async getLocks(): Promise<Lock[]> {
    if (!this.exists || this.above) return [];
    return (await this.adapter.locksOf(this.fileId)).map((r) => DbLock.from(this, r));
  }

  async getLocksByUser(user: User): Promise<Lock[]> {
    const name = principalOf(user).name;
    return (await this.getLocks()).filter((l) => (l as DbLock).principal === name);
  }

  async createLockForUser(user: User): Promise<Lock> {
    return new DbLock(this, principalOf(user).name);
  }

  async saveLock(record: LockRecord): Promise<void> {
    // nephele saves a provisional lock before creating a new resource; it is persisted once the resource exists.
    if (!this.exists) return;
    const meta = await this.adapter.metadata();
    await dav(() => meta.saveLock(record));
    this.adapter.forgetMetadata();
  }

  async deleteLock(token: string): Promise<void> {
    const meta = await this.adapter.metadata();
    await dav(() => meta.deleteLock(token));
    this.adapter.forgetMetadata();
  }

  async getProperties(): Promise<EventProperties> {
    return new EventProperties(this);
  }

  async getStream(range?: { start: number; end: number }): Promise<Readable> {
    const session = await this.session();
    const dl = await dav(() => session.openRead(this.path, range ?? null));
    const expected = range ? range.end - range.start + 1 : (this.node?.size ?? 0);
    let ended = false;
    dl.stream.once('end', () => {
      ended = true;
      dl.done(expected, true);
    });
    dl.stream.once('close', () => {
      if (!ended) dl.done((dl.stream as Readable & { bytesRead?: number }).bytesRead ?? 0, false);
    });
    return dl.stream;
  }

  /** PUT: streamed through the one write path (temp blob, fsync, rename, commit); an abort keeps the old content. */
  async setStream(input: Readable): Promise<void> {
    const committed = await writeBody(await this.session(), this.path, input, this.adapter.request.headers, this.adapter.response);
    this.adapter.forgetMetadata();
    this.node = nodeOf(committed);
  }

  async create(): Promise<void> {
    const session = await this.session();
    if (this.wantCollection) await dav(() => session.mkdir(this.path));
    else if (this.pendingId !== null) {
      // LOCK of an announced file: it stays pending (an empty body would not match its size) and holds the lock.
      return;
    } else {
      const t = await dav(() => session.beginWrite(this.path, { length: 0, sha256: null, createParents: false, resumable: false }));
      await dav(() => t.finish()).catch(async (err) => {
        await t.abort(true).catch(() => undefined);
        throw err;
      });
    }
    this.adapter.forgetMetadata();
    this.node = await dav(() => session.stat(this.path));
  }

  async delete(): Promise<void> {
    const session = await this.session();
    await dav(() => session.remove(this.path, { recursive: true }));
    this.adapter.forgetMetadata();
  }

  /** nephele copies collections level by level: a folder copy here makes the folder only. */
  async copy(destination: URL): Promise<void> {
    const session = await this.session();
    const to = this.adapter.pathOf(destination);
    if (await this.isCollection()) {
      const existing = await session.stat(to).catch(() => null);
      if (existing) await dav(() => session.remove(to, { recursive: true }));
      await dav(() => session.mkdir(to));
    } else await dav(() => session.copy(this.path, to, true));
    const copied = await dav(() => session.stat(to));
    const meta = await this.adapter.metadata();
    await dav(() => meta.copyProperties(this.fileId, copied.id!));
    this.adapter.forgetMetadata();
  }

  /** Files only: nephele moves collections as copy + move of each member + delete. */
  async move(destination: URL): Promise<void> {
    const session = await this.session();
    const to = this.adapter.pathOf(destination);
    await dav(() => session.rename(this.path, to, true));
    if (this.fileId !== null) {
      const meta = await this.adapter.metadata();
      await dav(() => meta.dropLocks(this.fileId!));
    }
    this.adapter.forgetMetadata();
  }

  async getLength(): Promise<number> {
    return this.node?.kind === 'file' ? this.node.size : 0;
  }

  async getEtag(): Promise<string> {
    return this.node?.etag ?? '';
  }

  async getMediaType(): Promise<string | null> {
    // Never sniffed or guessed: served bytes must not render in a browser on our origin.
    return (await this.isCollection()) ? null : 'application/octet-stream';
  }

  async getCanonicalName(): Promise<string> {
    return baseName(this.path);
  }

  async getCanonicalPath(): Promise<string> {
    return '/' + this.path;
  }

  async getCanonicalUrl(): Promise<URL> {
    if (this.above) return this.above;
    return this.adapter.urlOf(this.path, await this.isCollection());
  }

  async isCollection(): Promise<boolean> {
    if (this.path === '') return true;
    return this.node ? this.node.kind === 'dir' : this.wantCollection;
  }

  async getInternalMembers(): Promise<EventResource[]> {
    if (this.above) return [];
    const session = await this.session();
    const out: EventResource[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await dav(() => session.list(this.path, after, LIST_PAGE));
      for (const n of page) out.push(new EventResource(this.adapter, n.path, n));
      if (page.length < LIST_PAGE) break;
      after = page[page.length - 1].name;
    }
    await this.adapter.prefetch(out.map((r) => r.node));
    return out;
  }
}
