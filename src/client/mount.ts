import { randomBytes } from 'node:crypto';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { UserError } from '../cli/io.js';
import type { ApiClient } from './api.js';
import { revive } from './background.js';
import type { FuseInstance, FuseModule, FuseOps, FuseStat } from './fuseTypes.js';
import { newQueueFile, Queue } from './queue.js';

/** fuse-native, loaded only by `mount`: a missing libfuse must not break the other commands. */
export function loadFuse(): FuseModule {
  try {
    return createRequire(import.meta.url)('fuse-native') as FuseModule;
  } catch (err) {
    throw new UserError(`FUSE is not available (${(err as Error).message.split('\n')[0]}): install libfuse2 (Debian: apt install libfuse2 fuse3) and the fuse-native module`);
  }
}

type Handle =
  | { kind: 'spool'; path: string; spool: string; fh: FileHandle; writer: boolean }
  | { kind: 'remote'; path: string; buf: Buffer | null; bufPos: number };

const WINDOW = 4 * 1024 * 1024;
const STATE_XATTR = 'user.handoff.state';

/**
 * The event as a folder. Listings come from the API (refreshed at most every second); files
 * written here go to a local spool at disk speed and, when closed, into the event's upload queue
 * for the background uploader; reads of uploaded files stream from the gateway with HTTP Range.
 */
export class EventMount {
  private remote = new Map<string, { size: number; mtime: number; state: string; bytes: number }>();
  private remoteDirs = new Set<string>(['']);
  private local = new Map<string, { spool: string; size: number; mtime: number; writers: number }>();
  private dirs = new Set<string>();
  private handles = new Map<number, Handle>();
  private nextFd = 10;
  private fetchedAt = 0;
  private refreshing: Promise<void> | null = null;
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;
  private fuse: FuseInstance | null = null;

  constructor(private readonly api: ApiClient, private readonly eventId: string, private readonly queue: Queue, private readonly F: FuseModule) {}

  async refresh(force = false): Promise<void> {
    if (!force && Date.now() - this.fetchedAt < 1000) return;
    this.refreshing ??= (async () => {
      try {
        const e = await this.api.getEvent(this.eventId).catch((err: unknown) => {
          // Gateway away: keep serving the last listing (and the spool) rather than failing every stat.
          if (this.fetchedAt === 0) throw err;
          this.fetchedAt = Date.now();
          return null;
        });
        if (!e) return;
        const remote = new Map<string, { size: number; mtime: number; state: string; bytes: number }>();
        const dirs = new Set<string>(['']);
        for (const f of e.files) {
          if (f.state === 'removed') continue;
          remote.set(f.path, { size: f.size ?? 0, mtime: Date.now(), state: f.state, bytes: f.bytes });
          const parts = f.path.split('/');
          for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
        }
        this.remote = remote;
        this.remoteDirs = dirs;
        this.fetchedAt = Date.now();
        // Uploaded spool copies are deleted by the uploader: from then on the gateway's copy is shown.
        for (const [p, l] of this.local) if (l.writers === 0 && remote.get(p)?.state === 'complete' && !(await stat(l.spool).catch(() => null))) this.local.delete(p);
      } finally {
        this.refreshing = null;
      }
    })();
    await this.refreshing;
  }

  private isDir(p: string): boolean {
    if (this.remoteDirs.has(p) || this.dirs.has(p)) return true;
    for (const k of this.local.keys()) if (k.startsWith(`${p}/`)) return true;
    return false;
  }

  private statOf(kind: 'dir' | 'file', size: number, mtime: number): FuseStat {
    const t = new Date(mtime);
    return { mtime: t, atime: t, ctime: t, size, mode: kind === 'dir' ? 0o40755 : 0o100644, uid: this.uid, gid: this.gid, nlink: 1 };
  }

  private async spoolFile(path: string): Promise<Handle & { kind: 'spool' }> {
    await this.queue.ensure();
    const spool = join(this.queue.spoolDir, `${Date.now()}-${randomBytes(6).toString('hex')}`);
    const fh = await open(spool, 'w+', 0o600);
    const prev = this.local.get(path);
    this.local.set(path, { spool, size: 0, mtime: Date.now(), writers: (prev?.writers ?? 0) + 1 });
    return { kind: 'spool', path, spool, fh, writer: true };
  }

  /** A closed spool file joins the upload queue; the uploader announces it, uploads it and deletes the copy. */
  private async commit(h: Handle & { kind: 'spool' }): Promise<void> {
    await h.fh.sync();
    await h.fh.close();
    const l = this.local.get(h.path);
    if (l && l.spool === h.spool) l.writers = Math.max(0, l.writers - 1);
    if (!l || l.spool !== h.spool) return void (await unlink(h.spool).catch(() => undefined));
    const st = await stat(h.spool);
    l.size = st.size;
    await this.queue.enqueue([newQueueFile({ path: h.path, localPath: h.spool, size: st.size, mtimeMs: Math.floor(st.mtimeMs) }, { spooled: true, announce: true })]);
    await revive(this.queue);
  }

  private async readRemote(h: Handle & { kind: 'remote' }, buf: Buffer, len: number, pos: number): Promise<number> {
    const size = this.remote.get(h.path)?.size ?? 0;
    if (pos >= size) return 0;
    if (!h.buf || pos < h.bufPos || pos + Math.min(len, size - pos) > h.bufPos + h.buf.length) {
      const end = Math.min(size, pos + Math.max(len, WINDOW)) - 1;
      const res = await fetch(this.api.fileUrl(this.eventId, h.path), { headers: { authorization: this.api.authHeader, range: `bytes=${pos}-${end}` } });
      if (res.status !== 206 && res.status !== 200) throw new Error(`HTTP ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      h.buf = res.status === 200 ? body.subarray(pos, end + 1) : body;
      h.bufPos = pos;
    }
    const from = pos - h.bufPos;
    return h.buf.copy(buf, 0, from, Math.min(h.buf.length, from + len));
  }

  ops(): Partial<FuseOps> {
    const F = this.F;
    const rel = (p: string) => p.replace(/^\/+/, '');
    /** Every op is async; a thrown errno (negative number) or error becomes the FUSE answer. */
    const run = <T>(cb: (code: number, v?: T) => void, fn: () => Promise<T>) =>
      fn().then((v) => cb(0, v), (err: unknown) => cb(typeof err === 'number' ? err : F.EIO));
    const runN = (cb: (n: number) => void, fn: () => Promise<number>) => fn().then(cb, (err: unknown) => cb(typeof err === 'number' ? err : F.EIO));
    return {
      getattr: (p, cb) => run(cb, async () => {
        const path = rel(p);
        await this.refresh();
        const l = this.local.get(path);
        if (l) return this.statOf('file', l.size, l.mtime);
        const r = this.remote.get(path);
        if (r) return this.statOf('file', r.size, r.mtime);
        if (this.isDir(path)) return this.statOf('dir', 0, Date.now());
        throw F.ENOENT;
      }),
      fgetattr: (p, _fd, cb) => this.ops().getattr!(p, cb),
      readdir: (p, cb) => run(cb, async () => {
        const path = rel(p);
        await this.refresh(true);
        if (!this.isDir(path)) throw F.ENOTDIR;
        const prefix = path ? `${path}/` : '';
        const names = new Set<string>();
        for (const k of [...this.remote.keys(), ...this.local.keys(), ...this.remoteDirs, ...this.dirs]) {
          if (k && k.startsWith(prefix) && k !== path) names.add(k.slice(prefix.length).split('/')[0]);
        }
        return ['.', '..', ...[...names].sort()];
      }),
      open: (p, flags, cb) => run(cb, async () => {
        const path = rel(p);
        const fd = this.nextFd++;
        if ((flags & 3) !== 0) {
          // Writing replaces the file: a fresh spool copy (cp opens with O_TRUNC).
          this.handles.set(fd, await this.spoolFile(path));
          return fd;
        }
        await this.refresh();
        const l = this.local.get(path);
        if (l) this.handles.set(fd, { kind: 'spool', path, spool: l.spool, fh: await open(l.spool, 'r'), writer: false });
        else if (this.remote.get(path)?.state === 'complete') this.handles.set(fd, { kind: 'remote', path, buf: null, bufPos: 0 });
        else throw this.remote.has(path) ? F.EACCES : F.ENOENT;
        return fd;
      }),
      create: (p, _mode, cb) => run(cb, async () => {
        const fd = this.nextFd++;
        this.handles.set(fd, await this.spoolFile(rel(p)));
        return fd;
      }),
      read: (_p, fd, buf, len, pos, cb) => runN(cb, async () => {
        const h = this.handles.get(fd);
        if (!h) throw F.EBADF;
        if (h.kind === 'spool') return (await h.fh.read(buf, 0, len, pos)).bytesRead;
        return this.readRemote(h, buf, len, pos);
      }),
      write: (_p, fd, buf, len, pos, cb) => runN(cb, async () => {
        const h = this.handles.get(fd);
        if (!h || h.kind !== 'spool' || !h.writer) throw F.EBADF;
        const { bytesWritten } = await h.fh.write(buf, 0, len, pos);
        const l = this.local.get(h.path);
        if (l && l.spool === h.spool) (l.size = Math.max(l.size, pos + bytesWritten)), (l.mtime = Date.now());
        return bytesWritten;
      }),
      release: (_p, fd, cb) => run(cb, async () => {
        const h = this.handles.get(fd);
        this.handles.delete(fd);
        if (h?.kind === 'spool') {
          if (h.writer) await this.commit(h);
          else await h.fh.close();
        }
      }),
      ftruncate: (_p, fd, size, cb) => run(cb, async () => {
        const h = this.handles.get(fd);
        if (!h || h.kind !== 'spool') throw F.EBADF;
        await h.fh.truncate(size);
        const l = this.local.get(h.path);
        if (l) l.size = size;
      }),
      truncate: (p, size, cb) => run(cb, async () => {
        const l = this.local.get(rel(p));
        if (l && l.writers > 0) {
          const fh = await open(l.spool, 'r+');
          await fh.truncate(size).finally(() => fh.close());
          l.size = size;
        } else if (size !== 0) throw F.EROFS; // uploaded files change only by writing them anew
      }),
      unlink: (p, cb) => run(cb, async () => {
        const path = rel(p);
        const l = this.local.get(path);
        if (l) {
          this.local.delete(path);
          await this.queue.enqueue([newQueueFile({ path, localPath: l.spool, size: l.size, mtimeMs: 0 }, { state: 'cancelled', error: 'deleted in the mount' })]);
          await unlink(l.spool).catch(() => undefined);
        }
        if (this.remote.has(path)) await this.api.removeFile(this.eventId, path);
        else if (!l) throw F.ENOENT;
        this.remote.delete(path);
      }),
      mkdir: (p, _mode, cb) => run(cb, async () => {
        const path = rel(p);
        if (this.isDir(path) || this.remote.has(path)) throw F.EEXIST;
        this.dirs.add(path);
      }),
      rmdir: (p, cb) => run(cb, async () => {
        const path = rel(p);
        await this.refresh(true);
        for (const k of [...this.remote.keys(), ...this.local.keys()]) if (k.startsWith(`${path}/`)) throw F.ENOTEMPTY;
        this.dirs.delete(path);
      }),
      rename: (_s, _d, cb) => cb(F.EXDEV), // mv falls back to copy + delete
      statfs: (_p, cb) => cb(0, { bsize: 4096, frsize: 4096, blocks: 2 ** 30, bfree: 2 ** 30, bavail: 2 ** 30, files: 1e6, ffree: 1e6, favail: 1e6, fsid: 0, flag: 0, namemax: 255 }),
      // The file's state rides in an extended attribute: `getfattr -n user.handoff.state FILE`.
      getxattr: (p, name, _pos, cb) => run<Buffer | undefined>(cb, async () => {
        if (name !== STATE_XATTR) return undefined;
        const state = this.stateOf(rel(p));
        return state === null ? undefined : Buffer.from(state);
      }),
      listxattr: (p, cb) => cb(0, this.stateOf(rel(p)) === null ? [] : [STATE_XATTR]),
      utimens: (_p, _a, _m, cb) => cb(0),
      chmod: (_p, _m, cb) => cb(0),
      chown: (_p, _u, _g, cb) => cb(0),
      flush: (_p, _fd, cb) => cb(0),
      fsync: (_p, _d, _fd, cb) => cb(0),
    };
  }

  /** What `user.handoff.state` says: the gateway's state, or where a file written here stands locally. */
  stateOf(path: string): string | null {
    const l = this.local.get(path);
    if (l) return l.writers > 0 ? 'writing' : 'queued for upload';
    const r = this.remote.get(path);
    if (!r) return null;
    return r.state === 'uploading' && r.size > 0 ? `uploading ${Math.floor((100 * r.bytes) / r.size)}%` : r.state;
  }

  async mount(dir: string): Promise<void> {
    await this.refresh(true);
    // big_writes rides in the fsname option (fuse-native passes no other way): 128 KiB writes instead of 4 KiB.
    this.fuse = new this.F(dir, this.ops(), { force: true, mkdir: true, fsname: 'handoff,big_writes', timeout: 60_000 });
    await new Promise<void>((resolve, reject) => this.fuse!.mount((err) => (err ? reject(err) : resolve())));
  }

  async unmount(): Promise<void> {
    const f = this.fuse;
    this.fuse = null;
    if (f) await new Promise<void>((resolve) => f.unmount(() => resolve()));
  }

  /** Writes still open: unmounting now would lose them. */
  get openWriters(): number {
    return [...this.handles.values()].filter((h) => h.kind === 'spool' && h.writer).length;
  }
}
