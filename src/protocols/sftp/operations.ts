import type { FileSession, NodeInfo } from '../../cache/FileSession.js';
import { GatewayError } from '../../shared/errors.js';
import { encode, MAX_IO, OPEN_FLAGS, REQ, STATUS, type Attrs, type Reader } from './codec.js';
import { HandleTable, type Handle } from './handles.js';
import { longName, virtualPath, type Place, type VirtualTree } from './tree.js';

const DIR_PAGE = 100;
const OWNER = 'handoff';

type Op = (r: Reader, id: number) => Promise<Buffer>;

/** Where DATA replies get their memory (the session recycles buffers the channel has already copied). */
export interface ReplyBuffers {
  take(size: number): Buffer;
}

const ok = (id: number) => encode.status(id, STATUS.OK, 'OK');
const eof = (id: number) => encode.status(id, STATUS.EOF, 'End of file');

let uploadsSynced = 0;
/** fsync@openssh.com requests that flushed an upload (tests, diagnostics). */
export const uploadFsyncs = (): number => uploadsSynced;

/**
 * The SFTP v3 requests, each translated into FileSession calls. Nothing here touches storage or
 * the database, and no permission is decided here: FileSession says yes or no.
 */
export class Operations {
  readonly handles: HandleTable;

  constructor(
    private readonly tree: VirtualTree,
    maxHandles: number,
    private readonly buffers: ReplyBuffers = { take: (n) => Buffer.allocUnsafe(n) },
  ) {
    this.handles = new HandleTable(maxHandles);
  }

  /** The handler for a request type; undefined for types we do not know. */
  handler(type: number): Op | undefined {
    return this.table[type];
  }

  private readonly table: Record<number, Op> = {
    [REQ.OPEN]: (r, id) => this.open(r, id),
    [REQ.CLOSE]: (r, id) => this.close(r, id),
    [REQ.READ]: (r, id) => this.read(r, id),
    [REQ.WRITE]: (r, id) => this.write(r, id),
    [REQ.LSTAT]: async (r, id) => encode.attrs(id, await this.statPath(r.string())),
    [REQ.STAT]: async (r, id) => encode.attrs(id, await this.statPath(r.string())),
    [REQ.FSTAT]: (r, id) => this.fstat(r, id),
    [REQ.SETSTAT]: async (r, id) => {
      const path = r.string();
      await this.applyAttrs(path, r.attrs());
      return ok(id);
    },
    [REQ.FSETSTAT]: (r, id) => this.fsetstat(r, id),
    [REQ.OPENDIR]: (r, id) => this.opendir(r, id),
    [REQ.READDIR]: (r, id) => this.readdir(r, id),
    [REQ.REMOVE]: async (r, id) => {
      const p = await this.tree.resolveInEvent(r.string());
      await p.fs.remove(p.rel, { recursive: false, kind: 'file' });
      return ok(id);
    },
    [REQ.MKDIR]: async (r, id) => {
      const p = await this.tree.resolveInEvent(r.string());
      await p.fs.mkdir(p.rel);
      return ok(id);
    },
    [REQ.RMDIR]: async (r, id) => {
      const p = await this.tree.resolveInEvent(r.string());
      if (p.rel === '') throw new GatewayError('forbidden', 'an event folder cannot be removed over SFTP');
      await p.fs.remove(p.rel, { recursive: false, kind: 'dir' });
      return ok(id);
    },
    [REQ.REALPATH]: async (r, id) => {
      const path = virtualPath(r.string());
      return encode.name(id, [{ filename: path, longname: path, attrs: {} }]);
    },
    [REQ.RENAME]: (r, id) => this.rename(r.string(), r.string(), false, id),
    [REQ.READLINK]: async () => {
      throw new GatewayError('unsupported', 'symbolic links are not supported');
    },
    [REQ.SYMLINK]: async () => {
      throw new GatewayError('unsupported', 'symbolic links are not supported');
    },
    [REQ.EXTENDED]: (r, id) => this.extended(r, id),
  };

  private async open(r: Reader, id: number): Promise<Buffer> {
    const raw = r.string();
    const flags = r.u32();
    r.attrs();
    // Before anything is opened or truncated (reliability-security R2).
    this.handles.ensureRoom();
    const path = virtualPath(raw);
    const writing = (flags & (OPEN_FLAGS.WRITE | OPEN_FLAGS.APPEND | OPEN_FLAGS.CREAT | OPEN_FLAGS.TRUNC)) !== 0;
    const place = await this.tree.resolve(raw);
    if (place.kind === 'root') throw new GatewayError(writing ? 'forbidden' : 'conflict', writing ? 'the top level is not writable' : '/ is a folder');
    const { fs, rel } = place;
    if (!writing) {
      const download = await fs.openRandomRead(rel);
      return encode.handle(id, this.handles.add({ type: 'read', path, download, sentUpTo: 0 }));
    }
    if (rel === '') throw new GatewayError('conflict', `${path} is a folder`);
    // One lookup of the path: beginWrite refuses a folder there, and checks the flags against what it finds.
    const transfer = await fs.beginWrite(rel, {
      length: null, sha256: null, createParents: false, resumable: false, keepExisting: !(flags & OPEN_FLAGS.TRUNC),
      failIfExists: Boolean(flags & OPEN_FLAGS.CREAT && flags & OPEN_FLAGS.EXCL), failIfMissing: !(flags & OPEN_FLAGS.CREAT),
    });
    const handle: Handle = { type: 'write', path, fs, rel, transfer, append: Boolean(flags & OPEN_FLAGS.APPEND), readable: Boolean(flags & OPEN_FLAGS.READ), mtime: null, failed: false };
    try {
      return encode.handle(id, this.handles.add(handle));
    } catch (err) {
      await transfer.abort(true);
      throw err;
    }
  }

  /** CLOSE of an upload commits it: OK only after the bytes are durable and the state is committed. */
  private async close(r: Reader, id: number): Promise<Buffer> {
    const h = this.handles.take(r.bytes());
    if (h.type === 'read') {
      h.download.done(h.sentUpTo);
      await h.download.reader.close();
    } else if (h.type === 'write') {
      if (h.failed) {
        // A refused WRITE (quota, disk full) means the content is incomplete: never commit it.
        await h.transfer.abort(true);
        throw new GatewayError('conflict', `${h.path} was not stored: an earlier write failed`);
      }
      try {
        await h.transfer.finish(h.mtime ?? undefined);
      } catch (err) {
        await h.transfer.abort(true).catch(() => undefined);
        throw err;
      }
    }
    return ok(id);
  }

  private async read(r: Reader, id: number): Promise<Buffer> {
    const h = this.handles.get(r.bytes());
    const offset = r.u64();
    // Short reads are legal; a reply above 256 KiB makes OpenSSH abort (research §4.5).
    const len = Math.min(r.u32(), MAX_IO);
    if (h.type === 'dir') throw new GatewayError('conflict', `${h.path} is a folder`);
    if (h.type === 'write' && !h.readable) throw new GatewayError('forbidden', 'handle not open for reading');
    const out = this.buffers.take(13 + len);
    let n: number;
    if (h.type === 'read') {
      if (offset >= h.download.reader.size || len === 0) return eof(id);
      n = await h.download.reader.read(out, 13, Math.min(len, h.download.reader.size - offset), offset);
      h.sentUpTo = Math.max(h.sentUpTo, offset + n);
    } else n = await h.transfer.readAt(out.subarray(13, 13 + len), offset);
    if (n === 0) return eof(id);
    out.writeUInt32BE(9 + n, 0);
    out[4] = 103; // SSH_FXP_DATA
    out.writeUInt32BE(id, 5);
    out.writeUInt32BE(n, 9);
    return out.subarray(0, 13 + n);
  }

  private async write(r: Reader, id: number): Promise<Buffer> {
    const h = this.handles.get(r.bytes());
    const offset = r.u64();
    const data = r.bytes();
    if (h.type !== 'write') throw new GatewayError('forbidden', 'handle not open for writing');
    try {
      await h.transfer.writeAt(data, h.append ? h.transfer.offset : offset);
    } catch (err) {
      h.failed = true;
      throw err;
    }
    return ok(id);
  }

  private writerAttrs(h: Extract<Handle, { type: 'write' }>): Attrs {
    const t = Math.floor((h.mtime ?? Date.now()) / 1000);
    return { size: h.transfer.offset, permissions: 0o100644, atime: t, mtime: t };
  }

  private async statPath(raw: string): Promise<Attrs> {
    const path = virtualPath(raw);
    const writer = this.handles.writerAt(path);
    if (writer) return this.writerAttrs(writer);
    const place = await this.tree.resolve(raw);
    if (place.kind === 'root') return this.tree.attrsOf(this.tree.rootNode(), false);
    // A file still uploading can be fetched (follow mode), so STAT shows it with its announced size.
    const node = await place.fs.stat(place.rel, { arriving: true });
    return this.tree.attrsOf(node);
  }

  private async fstat(r: Reader, id: number): Promise<Buffer> {
    const h = this.handles.get(r.bytes());
    if (h.type === 'write') return encode.attrs(id, this.writerAttrs(h));
    if (h.type === 'read') return encode.attrs(id, this.tree.attrsOf(h.download.node));
    return encode.attrs(id, await this.statPath(h.path));
  }

  private async fsetstat(r: Reader, id: number): Promise<Buffer> {
    const h = this.handles.get(r.bytes());
    const attrs = r.attrs();
    if (h.type === 'write') {
      if (attrs.uid !== undefined) throw new GatewayError('forbidden', 'ownership cannot be changed');
      if (attrs.size !== undefined && attrs.size !== h.transfer.offset) await h.transfer.truncate(attrs.size);
      if (attrs.mtime !== undefined) h.mtime = attrs.mtime * 1000;
      return ok(id);
    }
    await this.applyAttrs(h.path, attrs);
    return ok(id);
  }

  /** SETSTAT: times are kept, a size change rewrites the file, permissions are accepted and ignored. */
  private async applyAttrs(raw: string, attrs: Attrs): Promise<void> {
    if (attrs.uid !== undefined) throw new GatewayError('forbidden', 'ownership cannot be changed');
    const path = virtualPath(raw);
    const writer = this.handles.writerAt(path);
    if (writer) {
      if (attrs.size !== undefined && attrs.size !== writer.transfer.offset) await writer.transfer.truncate(attrs.size);
      if (attrs.mtime !== undefined) writer.mtime = attrs.mtime * 1000;
      return;
    }
    const place = await this.tree.resolve(raw);
    if (place.kind === 'root' || !place.fs.mayWrite()) throw new GatewayError('forbidden', 'read-only');
    const { fs, rel } = place;
    const node = await fs.stat(rel);
    if (attrs.size !== undefined && node.kind === 'file' && attrs.size !== node.size) {
      const t = await fs.beginWrite(rel, { length: null, sha256: null, createParents: false, resumable: false, keepExisting: true });
      try {
        await t.truncate(attrs.size);
        await t.finish(attrs.mtime !== undefined ? attrs.mtime * 1000 : undefined);
      } catch (err) {
        await t.abort(true);
        throw err;
      }
    }
    if (attrs.mtime !== undefined) await fs.setMtime(rel, attrs.mtime * 1000);
  }

  private async opendir(r: Reader, id: number): Promise<Buffer> {
    const raw = r.string();
    this.handles.ensureRoom();
    const path = virtualPath(raw);
    const place = await this.tree.resolve(raw);
    if (place.kind === 'root') return encode.handle(id, this.handles.add({ type: 'dir', path, fs: null, rel: '', cursor: null, offset: 0, done: false }));
    const node = await place.fs.stat(place.rel);
    if (node.kind !== 'dir') throw new GatewayError('not_found', `${path} is not a folder`);
    return encode.handle(id, this.handles.add({ type: 'dir', path, fs: place.fs, rel: place.rel, cursor: null, offset: 0, done: false }));
  }

  /** Pages of at most 100 entries; EOF after the last one, or clients loop (ssh2 #1377). */
  private async readdir(r: Reader, id: number): Promise<Buffer> {
    const h = this.handles.get(r.bytes());
    if (h.type !== 'dir') throw new GatewayError('bad_request', 'not a folder handle');
    let nodes: NodeInfo[] = [];
    while (!h.done && nodes.length === 0) {
      if (h.fs === null) {
        const page = await this.tree.eventPage(h.offset, DIR_PAGE);
        h.offset += page.scanned;
        h.done = page.scanned < DIR_PAGE;
        nodes = page.entries;
      } else {
        nodes = await h.fs.list(h.rel, h.cursor, DIR_PAGE);
        if (nodes.length) h.cursor = nodes[nodes.length - 1].name;
        h.done = nodes.length < DIR_PAGE;
      }
    }
    if (nodes.length === 0) return eof(id);
    return encode.name(id, nodes.map((n) => {
      const attrs = this.tree.attrsOf(n);
      return { filename: n.name, longname: longName(n.name, attrs, OWNER), attrs };
    }));
  }

  private async rename(from: string, to: string, overwrite: boolean, id: number): Promise<Buffer> {
    const a = await this.tree.resolveInEvent(from);
    const b = await this.tree.resolveInEvent(to);
    if (a.eventId !== b.eventId) throw new GatewayError('conflict', 'files cannot be moved between events');
    await a.fs.rename(a.rel, b.rel, overwrite);
    return ok(id);
  }

  private async extended(r: Reader, id: number): Promise<Buffer> {
    const name = r.string();
    switch (name) {
      case 'limits@openssh.com':
        return encode.limits(id, this.handles.max);
      case 'posix-rename@openssh.com':
        return this.rename(r.string(), r.string(), true, id);
      case 'statvfs@openssh.com':
        return this.statvfs(await this.tree.resolve(r.string()), id);
      case 'fsync@openssh.com':
        return this.fsync(r.bytes(), id);
      default:
        throw new GatewayError('unsupported', `${name} is not supported`);
    }
  }

  /**
   * `put -f` and other careful clients: an upload's bytes so far are flushed (CLOSE commits durably
   * anyway); a download has nothing to flush. OpenSSH refuses a folder handle, and so do we.
   */
  private async fsync(handle: Buffer, id: number): Promise<Buffer> {
    const h = this.handles.get(handle);
    if (h.type === 'dir') throw new GatewayError('unsupported', `${h.path} is a folder`);
    if (h.type === 'write') {
      await h.transfer.sync();
      uploadsSynced++;
    }
    return ok(id);
  }

  /** `df` shows the event's quota: total, and what is still free. */
  private statvfs(place: Place, id: number): Buffer {
    if (place.kind === 'root') throw new GatewayError('unsupported', 'df works inside an event folder');
    const e = place.fs.event;
    const bs = 4096;
    return encode.statvfs(id, { blockSize: bs, blocks: Math.ceil(e.quota_bytes / bs), free: Math.max(0, Math.floor((e.quota_bytes - e.used_bytes - e.reserved_bytes) / bs)), files: 1_000_000 });
  }
}
