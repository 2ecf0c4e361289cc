import type { FileSession, RandomRead } from '../../cache/FileSession.js';
import type { Transfer } from '../../cache/transfers.js';
import { GatewayError } from '../../shared/errors.js';

export type Handle =
  | { type: 'read'; path: string; download: RandomRead; sentUpTo: number }
  | { type: 'write'; path: string; fs: FileSession; rel: string; transfer: Transfer; append: boolean; readable: boolean; mtime: number | null; failed: boolean }
  | { type: 'dir'; path: string; fs: FileSession | null; rel: string; cursor: string | null; offset: number; done: boolean };

/**
 * One session's open handles. The cap keeps one client from using up the process's file
 * descriptors (every session shares one Node process); it is checked before anything is opened.
 */
export class HandleTable {
  private readonly map = new Map<number, Handle>();
  private nextId = 1;

  constructor(readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  ensureRoom(): void {
    if (this.map.size >= this.max) throw new GatewayError('conflict', `too many open handles (at most ${this.max})`);
  }

  add(h: Handle): Buffer {
    this.ensureRoom();
    const id = this.nextId++ >>> 0;
    this.map.set(id, h);
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(id);
    return b;
  }

  private idOf(raw: Buffer): number {
    return raw.length === 4 ? raw.readUInt32BE(0) : -1;
  }

  get(raw: Buffer): Handle {
    const h = this.map.get(this.idOf(raw));
    if (!h) throw new GatewayError('bad_request', 'invalid handle');
    return h;
  }

  take(raw: Buffer): Handle {
    const h = this.get(raw);
    this.map.delete(this.idOf(raw));
    return h;
  }

  /** The open upload at this virtual path, if this session has one: sshfs stats a file it just created. */
  writerAt(path: string): Extract<Handle, { type: 'write' }> | undefined {
    let found: Extract<Handle, { type: 'write' }> | undefined;
    for (const h of this.map.values()) if (h.type === 'write' && h.path === path) found = h;
    return found;
  }

  drain(): Handle[] {
    const all = [...this.map.values()];
    this.map.clear();
    return all;
  }
}

/** Releases a handle without committing: uploads are discarded, downloads recorded as partial. */
export async function releaseHandle(h: Handle): Promise<void> {
  if (h.type === 'read') {
    h.download.done(h.sentUpTo);
    await h.download.reader.close().catch(() => undefined);
  } else if (h.type === 'write') {
    await h.transfer.abort(true).catch(() => undefined);
  }
}
