import { randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/**
 * ssh2 1.17 allocates a new buffer for every SSH packet it sends, one per 32 KiB of a download:
 * a GiB of short-lived external memory per GiB sent. V8 answers that with "external memory
 * pressure" collections, and in about half of all sessions with back-to-back full mark-compacts
 * that took over a third of the CPU (perf, 2026-12-02): 400–550 MB/s instead of 750–850 MB/s, the
 * "bimodal" downloads of the benchmark. Here the AES-GCM cipher (the only ciphers we offer) takes
 * packet buffers from a pool, and the connection's socket hands each back once it has written it.
 * ssh2 is pinned (1.17.0); `installed` is false, and nothing is changed, if its cipher class does
 * not look as expected, so an upgrade degrades to plain allocation, never to corruption.
 */

/** One packet of OpenSSH's maximum size (32 KiB of data) plus SSH framing, padding and tag. */
const CAPACITY = 32 * 1024 + 256;
/** Smaller packets come from Node's shared 8 KiB slab anyway. */
const MIN_POOLED = 4096;
/** Two connections' worth of SSH window (2 MiB each); beyond it, buffers are left to the GC. */
const MAX_FREE = 128;

const free: Buffer[] = [];
const pooled = new WeakSet<ArrayBufferLike>();

function take(n: number): Buffer {
  if (n < MIN_POOLED || n > CAPACITY) return Buffer.allocUnsafe(n);
  let b = free.pop();
  if (!b) {
    b = Buffer.allocUnsafeSlow(CAPACITY);
    pooled.add(b.buffer);
  }
  return b.subarray(0, n);
}

function give(data: Buffer): void {
  if (free.length < MAX_FREE) free.push(Buffer.from(data.buffer, 0, CAPACITY));
}

interface CipherLike {
  allocPacket(payloadLen: number): Buffer;
  encrypt(packet: Buffer): void;
  free(): void;
}

interface Ssh2Crypto {
  bindingAvailable: boolean;
  CIPHER_INFO: Record<string, { keyLen: number; ivLen: number; sslName: string }>;
  createCipher(config: unknown): CipherLike;
}

function install(): boolean {
  let crypto: Ssh2Crypto;
  try {
    crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as Ssh2Crypto;
  } catch {
    return false;
  }
  // Without ssh2's native binding the cipher writes its own fresh buffers, and pooling buys nothing.
  if (!crypto.bindingAvailable) return false;
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
    const packet = take(pktLen + 16);
    packet.writeUInt32BE(pktLen - 4, 0);
    packet[4] = padLen;
    randomFillSync(packet, 5 + payloadLen, padLen);
    return packet;
  };
  return true;
}

export const installed = install();

/**
 * Gives pooled packets back once `socket` has written them. ssh2 writes each packet exactly once,
 * without a callback; a packet never written (connection gone) is simply left to the GC.
 */
export function recyclePackets(socket: Socket): void {
  if (!installed) return;
  const write = socket.write as (this: Socket, ...args: unknown[]) => boolean;
  socket.write = function (this: Socket, data: unknown, ...rest: unknown[]): boolean {
    if (rest.length === 0 && Buffer.isBuffer(data) && pooled.has(data.buffer)) {
      return write.call(this, data, (err?: Error | null) => {
        if (!err) give(data);
      });
    }
    return write.call(this, data, ...rest);
  } as Socket['write'];
}

/** Buffers waiting for reuse (tests, metrics). */
export function pooledFree(): number {
  return free.length;
}
