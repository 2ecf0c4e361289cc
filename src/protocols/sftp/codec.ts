/**
 * SFTP version 3 wire format (draft-ietf-secsh-filexfer-02) plus the OpenSSH extensions we answer.
 * Our own codec instead of ssh2's SFTP class: that class has no backpressure, no exit-status, a
 * fixed VERSION packet without extensions and no EXTENDED_REPLY (research/sftp-eval.md §4), while
 * ssh2's plain Channel is a proper Duplex stream with SSH window flow control.
 */

export const REQ = {
  INIT: 1, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10, OPENDIR: 11,
  READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18, READLINK: 19, SYMLINK: 20, EXTENDED: 200,
} as const;

const RES = { VERSION: 2, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED_REPLY: 201 } as const;

export const STATUS = {
  OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, NO_CONNECTION: 6, CONNECTION_LOST: 7, OP_UNSUPPORTED: 8,
} as const;
export type StatusCode = (typeof STATUS)[keyof typeof STATUS];

export const OPEN_FLAGS = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

const ATTR = { SIZE: 0x1, UIDGID: 0x2, PERMISSIONS: 0x4, ACMODTIME: 0x8, EXTENDED: 0x80000000 } as const;

export interface Attrs {
  size?: number;
  uid?: number;
  gid?: number;
  permissions?: number;
  atime?: number;
  mtime?: number;
}

/** Largest packet we accept: a 255 KiB WRITE plus its header fits comfortably. */
export const MAX_PACKET = 256 * 1024 + 4096;
/** What we advertise in limits@openssh.com, as OpenSSH's sftp-server does (256 KiB minus 1 KiB). */
export const MAX_IO = 261_120;

export class BadMessage extends Error {}

/** Sequential reader over one request payload (after the type byte). */
export class Reader {
  private p = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.p + n > this.buf.length) throw new BadMessage('truncated packet');
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.p);
    this.p += 8;
    // Offsets above 2^53 cannot be represented exactly: refuse them rather than round (§4.10).
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BadMessage('offset too large');
    return Number(v);
  }
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const v = this.buf.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }
  string(): string {
    const b = this.bytes();
    const s = b.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(b)) throw new BadMessage('file names must be UTF-8');
    return s;
  }
  attrs(): Attrs {
    const flags = this.u32();
    const a: Attrs = {};
    if (flags & ATTR.SIZE) a.size = this.u64();
    if (flags & ATTR.UIDGID) (a.uid = this.u32()), (a.gid = this.u32());
    if (flags & ATTR.PERMISSIONS) a.permissions = this.u32();
    if (flags & ATTR.ACMODTIME) (a.atime = this.u32()), (a.mtime = this.u32());
    if (flags & ATTR.EXTENDED) {
      const count = this.u32();
      if (count > 64) throw new BadMessage('too many extended attributes');
      for (let i = 0; i < count; i++) this.bytes(), this.bytes();
    }
    return a;
  }
}

/** Builds one reply packet; sizes are computed up front so each reply is one allocation. */
class Writer {
  private readonly parts: Buffer[] = [];
  private len = 0;
  private push(b: Buffer): this {
    this.parts.push(b);
    this.len += b.length;
    return this;
  }
  u8(v: number): this {
    return this.push(Buffer.from([v]));
  }
  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0);
    return this.push(b);
  }
  u64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(Math.max(0, Math.trunc(v))));
    return this.push(b);
  }
  bytes(b: Buffer): this {
    return this.u32(b.length).push(b);
  }
  string(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }
  attrs(a: Attrs): this {
    let flags = 0;
    if (a.size !== undefined) flags |= ATTR.SIZE;
    if (a.uid !== undefined && a.gid !== undefined) flags |= ATTR.UIDGID;
    if (a.permissions !== undefined) flags |= ATTR.PERMISSIONS;
    if (a.atime !== undefined && a.mtime !== undefined) flags |= ATTR.ACMODTIME;
    this.u32(flags);
    if (a.size !== undefined) this.u64(a.size);
    if (flags & ATTR.UIDGID) this.u32(a.uid!).u32(a.gid!);
    if (a.permissions !== undefined) this.u32(a.permissions);
    if (flags & ATTR.ACMODTIME) this.u32(a.atime!).u32(a.mtime!);
    return this;
  }
  packet(): Buffer {
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(this.len);
    return Buffer.concat([head, ...this.parts], this.len + 4);
  }
}

export const EXTENSIONS: Array<[string, string]> = [
  ['posix-rename@openssh.com', '1'],
  ['statvfs@openssh.com', '2'],
  ['limits@openssh.com', '1'],
  ['fsync@openssh.com', '1'],
];

export const encode = {
  version(): Buffer {
    const w = new Writer().u8(RES.VERSION).u32(3);
    for (const [name, data] of EXTENSIONS) w.string(name).string(data);
    return w.packet();
  },
  status(id: number, code: StatusCode, message: string): Buffer {
    return new Writer().u8(RES.STATUS).u32(id).u32(code).string(message).string('en').packet();
  },
  handle(id: number, handle: Buffer): Buffer {
    return new Writer().u8(RES.HANDLE).u32(id).bytes(handle).packet();
  },
  /** DATA with the payload copied once into the reply buffer. */
  data(id: number, data: Buffer): Buffer {
    const b = Buffer.allocUnsafe(13 + data.length);
    b.writeUInt32BE(9 + data.length, 0);
    b[4] = RES.DATA;
    b.writeUInt32BE(id, 5);
    b.writeUInt32BE(data.length, 9);
    data.copy(b, 13);
    return b;
  },
  name(id: number, entries: Array<{ filename: string; longname: string; attrs: Attrs }>): Buffer {
    const w = new Writer().u8(RES.NAME).u32(id).u32(entries.length);
    for (const e of entries) w.string(e.filename).string(e.longname).attrs(e.attrs);
    return w.packet();
  },
  attrs(id: number, a: Attrs): Buffer {
    return new Writer().u8(RES.ATTRS).u32(id).attrs(a).packet();
  },
  limits(id: number, maxHandles: number): Buffer {
    return new Writer().u8(RES.EXTENDED_REPLY).u32(id).u64(256 * 1024).u64(MAX_IO).u64(MAX_IO).u64(maxHandles).packet();
  },
  statvfs(id: number, v: { blockSize: number; blocks: number; free: number; files: number }): Buffer {
    const w = new Writer().u8(RES.EXTENDED_REPLY).u32(id).u64(v.blockSize).u64(v.blockSize).u64(v.blocks).u64(v.free).u64(v.free);
    return w.u64(v.files).u64(v.files).u64(v.files).u64(0).u64(0).u64(255).packet();
  },
};

/**
 * Splits the channel's byte stream into packets, copying every byte as it arrives: once `push`
 * returns, nothing refers to the chunk, so the SSH layer may reuse its buffer (see
 * packetBuffers.ts). Each packet is written once into a buffer of its own size, so a 255 KiB
 * WRITE arriving in 32 KiB SSH packets costs one copy, not eight. A bad length is reported by
 * the next call to `next`.
 */
export class PacketFramer {
  private readonly lenBytes = Buffer.alloc(4);
  private lenHave = 0;
  private packet: Buffer | null = null;
  private have = 0;
  private readonly ready: Buffer[] = [];
  private readyHead = 0;
  private error: BadMessage | null = null;

  constructor(private readonly alloc: (n: number) => Buffer = (n) => Buffer.allocUnsafe(n)) {}

  push(chunk: Buffer): void {
    let p = 0;
    while (p < chunk.length && !this.error) {
      if (this.packet === null) {
        const k = Math.min(4 - this.lenHave, chunk.length - p);
        chunk.copy(this.lenBytes, this.lenHave, p, p + k);
        this.lenHave += k;
        p += k;
        if (this.lenHave < 4) return;
        this.lenHave = 0;
        const len = this.lenBytes.readUInt32BE(0);
        if (len === 0 || len > MAX_PACKET) {
          this.error = new BadMessage(`bad packet length ${len}`);
          return;
        }
        this.packet = this.alloc(len);
        this.have = 0;
      }
      const k = Math.min(this.packet.length - this.have, chunk.length - p);
      chunk.copy(this.packet, this.have, p, p + k);
      this.have += k;
      p += k;
      if (this.have === this.packet.length) {
        this.ready.push(this.packet);
        this.packet = null;
      }
    }
  }

  /** The next complete packet (type byte first), null if more bytes are needed. Throws on a bad length. */
  next(): Buffer | null {
    if (this.readyHead < this.ready.length) {
      const pkt = this.ready[this.readyHead++];
      if (this.readyHead === this.ready.length) {
        this.ready.length = 0;
        this.readyHead = 0;
      }
      return pkt;
    }
    if (this.error) throw this.error;
    return null;
  }
}
