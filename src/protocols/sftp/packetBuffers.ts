import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { fillRandom } from '../../shared/randomPool.js';

/**
 * Pooled SSH packet buffers, both ways.
 *
 * Out: ssh2 1.17 allocates a new buffer for every SSH packet it sends, one per 32 KiB of a download:
 * a GiB of short-lived external memory per GiB sent. V8 answers that with "external memory
 * pressure" collections, and in about half of all sessions with back-to-back full mark-compacts
 * that took over a third of the CPU (perf, 2026-12-02): 400–550 MB/s instead of 750–850 MB/s, the
 * "bimodal" downloads of the benchmark. Here the AES-GCM cipher (the only ciphers we offer) takes
 * packet buffers from a pool, and the connection's socket hands each back once it has written it.
 * ssh2 is pinned (1.17.0); `installed` is false, and nothing is changed, if its cipher class does
 * not look as expected, so an upgrade degrades to plain allocation, never to corruption.
 *
 * In: the same churn on uploads. Every inbound packet that straddles two socket reads (about half
 * of them) got a fresh 32 KiB buffer, and the others were decrypted in place inside the socket's
 * read buffer. With the socket reads, 1.5 GiB of short-lived buffers per GiB uploaded: 29 full
 * mark-compacts per GiB, about 3.5 s of V8 helper-thread CPU and 2 s on the main thread (perf and
 * per-thread CPU, 2026-12-03). The AES-GCM decipher here assembles every packet in a pooled buffer
 * of its own, so it never keeps a view of the socket's read buffer (which `recycleReads` can then
 * reuse), and takes the buffer back after the packet's handler returns if, and only if, the
 * consumer said it copied the data out synchronously (`copiedOut`, called by the SFTP session for
 * channel data its framer copied inside ssh2's `push`). Every other message keeps its buffer,
 * which the GC reclaims as before.
 */

/** One packet of OpenSSH's maximum size (32 KiB of data) plus SSH framing, padding and tag. */
const CAPACITY = 32 * 1024 + 256;
/** Smaller packets come from Node's shared 8 KiB slab anyway. */
const MIN_POOLED = 4096;
/** Two connections' worth of SSH window (2 MiB each); beyond it, buffers are left to the GC. */
const MAX_FREE = 128;

/** Buffers of CAPACITY bytes, each with an ArrayBuffer of its own (never a slice of Node's shared slab). */
class Pool {
  private readonly free: Buffer[] = [];
  private readonly mine = new WeakSet<ArrayBufferLike>();
  /** Buffers handed back so far (tests). */
  returned = 0;

  take(n: number): Buffer {
    if (n < MIN_POOLED || n > CAPACITY) return Buffer.allocUnsafe(n);
    let b = this.free.pop();
    if (!b) {
      b = Buffer.allocUnsafeSlow(CAPACITY);
      this.mine.add(b.buffer);
    }
    return b.subarray(0, n);
  }

  owns(data: Buffer): boolean {
    return this.mine.has(data.buffer);
  }

  give(data: Buffer): void {
    if (!this.owns(data)) return;
    this.returned++;
    if (this.free.length < MAX_FREE) this.free.push(Buffer.from(data.buffer, 0, CAPACITY));
  }

  get size(): number {
    return this.free.length;
  }
}

const outbound = new Pool();
const inbound = new Pool();

interface CipherLike {
  allocPacket(payloadLen: number): Buffer;
  encrypt(packet: Buffer): void;
  free(): void;
}

interface Ssh2Crypto {
  bindingAvailable: boolean;
  CIPHER_INFO: Record<string, { keyLen: number; ivLen: number; sslName: string }>;
  createCipher(config: unknown): CipherLike;
  createDecipher(config: unknown): DecipherLike;
}

interface DecipherLike {
  decrypt(data: Buffer, p: number, dataLen: number): number | undefined;
  free(): void;
}

/** The fields of ssh2's AESGCMDecipherBinding that its decrypt() uses (ssh2 1.17.0). */
interface AesGcmDecipherState {
  inSeqno: number;
  _onPayload(payload: Buffer): unknown;
  _instance: { decrypt(packet: Buffer, len: number, tag: Buffer): void };
  _len: number;
  _lenBytes: number;
  _packet: Buffer | null;
  _pktLen: number;
  _tag: Buffer;
  _tagPos: number;
}

/** Set by `copiedOut` while a packet's handler runs: the ArrayBuffer whose bytes were copied out. */
let copied: ArrayBufferLike | null = null;

/**
 * Called by a consumer of channel data that has copied `data` and keeps no reference to it, from
 * within ssh2's synchronous `push`: the decipher may then reuse the packet buffer under it.
 */
export function copiedOut(data: Buffer): void {
  copied = data.buffer;
}

/** ssh2's bounds for an inbound packet (protocol/constants MAX_PACKET_SIZE is 35000). */
const MAX_PACKET_SIZE = 35000;

/**
 * ssh2 1.17's AESGCMDecipherBinding.decrypt, except that the packet is always assembled in a
 * buffer of our own (never a view of `data`) and that buffer is reused once its consumer copied it out.
 */
function decrypt(this: AesGcmDecipherState, data: Buffer, p: number, dataLen: number): number | undefined {
  while (p < dataLen) {
    // Packet length: unencrypted, authenticated as AAD.
    if (this._lenBytes < 4) {
      let nb = Math.min(4 - this._lenBytes, dataLen - p);
      this._lenBytes += nb;
      while (nb--) this._len = (this._len << 8) + data[p++];
      if (this._lenBytes < 4) return undefined;
      if (this._len + 20 > MAX_PACKET_SIZE || this._len < 16 || (this._len & 15) !== 0) throw new Error(`Bad packet length: ${this._len}`);
    }
    if (this._pktLen < this._len) {
      if (p >= dataLen) return undefined;
      const nb = Math.min(this._len - this._pktLen, dataLen - p);
      this._packet ??= inbound.take(this._len);
      data.copy(this._packet, this._pktLen, p, p + nb);
      p += nb;
      this._pktLen += nb;
      if (this._pktLen < this._len || p >= dataLen) return undefined;
    }
    {
      const nb = Math.min(16 - this._tagPos, dataLen - p);
      data.copy(this._tag, this._tagPos, p, p + nb);
      p += nb;
      this._tagPos += nb;
      if (this._tagPos < 16) return undefined;
    }
    const packet = this._packet!;
    this._instance.decrypt(packet, this._len, this._tag);
    const payload = Buffer.from(packet.buffer, packet.byteOffset + 1, packet.length - packet[0] - 1);

    this.inSeqno = (this.inSeqno + 1) >>> 0;
    this._len = 0;
    this._lenBytes = 0;
    this._packet = null;
    this._pktLen = 0;
    this._tagPos = 0;

    copied = null;
    let ret: unknown;
    try {
      ret = this._onPayload(payload);
    } finally {
      if (copied === packet.buffer) inbound.give(packet);
      copied = null;
    }
    if (ret !== undefined) return ret === false ? p : (ret as number);
  }
  return undefined;
}

function installInbound(crypto: Ssh2Crypto | null): boolean {
  const info = crypto?.CIPHER_INFO['aes128-gcm@openssh.com'];
  if (!crypto || !info) return false;
  const probe = crypto.createDecipher({
    inbound: { onPayload: () => undefined, decipherInfo: info, decipherKey: Buffer.alloc(info.keyLen), decipherIV: Buffer.alloc(info.ivLen), seqno: 0 },
  }) as DecipherLike & Partial<AesGcmDecipherState>;
  const proto = Object.getPrototypeOf(probe) as DecipherLike & { constructor: { name: string } };
  probe.free();
  // Our decrypt relies on exactly these fields; any other layout keeps ssh2's own.
  const fields = ['inSeqno', '_onPayload', '_instance', '_len', '_lenBytes', '_packet', '_pktLen', '_tag', '_tagPos'];
  if (proto.constructor.name !== 'AESGCMDecipherBinding' || typeof proto.decrypt !== 'function' || !fields.every((f) => f in probe)) return false;
  if (!(probe._tag instanceof Buffer) || probe._tag.length !== 16) return false;
  proto.decrypt = decrypt as unknown as DecipherLike['decrypt'];
  (proto as unknown as Record<symbol, boolean>)[OURS] = true;
  return true;
}

/** Marks deciphers whose decrypt never keeps a view of the bytes it is given. */
const OURS = Symbol('handoff.copyingDecipher');

/** True when the ssh2 connection's current decipher (its Protocol's `_decipher`) copies everything it reads. */
function decipherCopies(connection: unknown): boolean {
  const decipher = (connection as { _protocol?: { _decipher?: unknown } } | null)?._protocol?._decipher;
  return typeof decipher === 'object' && decipher !== null && (decipher as Record<symbol, unknown>)[OURS] === true;
}

function loadCrypto(): Ssh2Crypto | null {
  try {
    const crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as Ssh2Crypto;
    return crypto.bindingAvailable ? crypto : null;
  } catch {
    return null;
  }
}

function install(crypto: Ssh2Crypto | null): boolean {
  if (!crypto) return false;
  const info = crypto.CIPHER_INFO['aes128-gcm@openssh.com'];
  if (!info) return false;
  const probe = crypto.createCipher({
    outbound: { onWrite: () => undefined, cipherInfo: info, cipherKey: Buffer.alloc(info.keyLen), cipherIV: Buffer.alloc(info.ivLen), seqno: 0 },
  });
  const proto = Object.getPrototypeOf(probe) as CipherLike & { constructor: { name: string } };
  probe.free();
  if (proto.constructor.name !== 'AESGCMCipherBinding' || typeof proto.allocPacket !== 'function') return false;
  // Same layout as ssh2's own allocPacket: length, padding length, payload, random padding, 16-byte tag.
  proto.allocPacket = function allocPacket(payloadLen: number): Buffer {
    let pktLen = 4 + 1 + payloadLen;
    let padLen = 16 - ((pktLen - 4) & 15);
    if (padLen < 4) padLen += 16;
    pktLen += padLen;
    const packet = outbound.take(pktLen + 16);
    packet.writeUInt32BE(pktLen - 4, 0);
    packet[4] = padLen;
    fillRandom(packet, 5 + payloadLen, padLen);
    return packet;
  };
  return true;
}

// Without ssh2's native binding its ciphers work on their own fresh buffers, and pooling buys nothing.
const ssh2Crypto = loadCrypto();
export const installed = install(ssh2Crypto);
export const inboundInstalled = installInbound(ssh2Crypto);

/**
 * Gives pooled packets back once `socket` has written them. ssh2 writes each packet exactly once,
 * without a callback; a packet never written (connection gone) is simply left to the GC.
 */
export function recyclePackets(socket: Socket): void {
  if (!installed) return;
  const write = socket.write as (this: Socket, ...args: unknown[]) => boolean;
  socket.write = function (this: Socket, data: unknown, ...rest: unknown[]): boolean {
    if (rest.length === 0 && Buffer.isBuffer(data) && outbound.owns(data)) {
      return write.call(this, data, (err?: Error | null) => {
        if (!err) outbound.give(data);
      });
    }
    return write.call(this, data, ...rest);
  } as Socket['write'];
}

/** Outbound buffers waiting for reuse (tests, metrics). */
export function pooledFree(): number {
  return outbound.size;
}

/** Inbound packet buffers handed back for reuse since start (tests). */
export function inboundReturned(): number {
  return inbound.returned;
}

/** Socket reads that went into a reused buffer since start (tests). */
let readsReused = 0;
export function socketReadsReused(): number {
  return readsReused;
}

/** Socket read size, as Node's own default. */
const READ_SIZE = 64 * 1024;

interface UserBufferHandle {
  reading?: boolean;
  useUserBuffer?(buf: Buffer): void;
}

/**
 * Reads `socket` into one reused buffer instead of a fresh 64 KiB buffer per read (a GiB of
 * short-lived buffers per GiB uploaded), once the decipher of the ssh2 connection that
 * `connection()` returns copies what it reads (our AES-GCM one: after the first key exchange). Before that, and whenever it is
 * not, every read gets a fresh buffer as usual, because ssh2's plaintext key exchange keeps views
 * of the bytes it parsed. Node offers this (`net.Socket`'s `onread` option) only to sockets it
 * creates for a caller; an accepted socket is switched over the way that constructor does it,
 * through the symbols it uses, and left as it is (returns false) unless they are all found.
 * Must run before the socket starts reading (`pauseOnConnect`). A key exchange only ever installs
 * another AES-GCM decipher (the only ciphers offered), so a connection never goes back to one
 * that keeps views.
 */
export function recycleReads(socket: Socket, connection: () => unknown): boolean {
  if (!inboundInstalled) return false;
  const own = Object.getOwnPropertySymbols(socket);
  const symbol = (name: string) => own.find((s) => s.description === name);
  const kBuffer = symbol('kBuffer');
  const kBufferCb = symbol('kBufferCb');
  const kBufferGen = symbol('kBufferGen');
  const handle = (socket as unknown as { _handle?: UserBufferHandle })._handle;
  const fields = socket as unknown as Record<symbol, unknown>;
  if (!kBuffer || !kBufferCb || !kBufferGen || fields[kBuffer] !== null || fields[kBufferGen] !== null) return false;
  if (!handle || typeof handle.useUserBuffer !== 'function' || handle.reading) return false;
  const reused = Buffer.allocUnsafeSlow(READ_SIZE);
  let safe = false;
  const next = (): Buffer => {
    safe ||= decipherCopies(connection());
    if (!safe) return Buffer.allocUnsafeSlow(READ_SIZE);
    readsReused++;
    return reused;
  };
  fields[kBufferGen] = next;
  // ssh2 listens for 'data' and parses each chunk synchronously, before the next read lands.
  fields[kBufferCb] = (nread: number, buf: Buffer) => {
    socket.emit('data', buf.subarray(0, nread));
  };
  const first = next();
  fields[kBuffer] = first;
  handle.useUserBuffer(first);
  return true;
}
