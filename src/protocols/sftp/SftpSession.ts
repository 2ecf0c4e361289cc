import type { Duplex } from 'node:stream';
import type { Logger } from '../../shared/log.js';
import { BadMessage, encode, PacketFramer, Reader, REQ, STATUS } from './codec.js';
import { copiedOut } from './packetBuffers.js';
import { statusOf } from './errors.js';
import { releaseHandle } from './handles.js';
import type { Operations, ReplyBuffers } from './operations.js';

/**
 * ssh2's server Channel: a Duplex with SSH window flow control, plus exit-status. ssh2 delivers
 * each CHANNEL_DATA with `push` and opens the client's window again only while `push` returns
 * true; after a false it waits for `_read` (the Readable contract) before it does.
 */
export interface SftpChannel extends Duplex {
  exit(status: number): void;
}

interface Job {
  packet: Buffer;
  seq: number;
  type: number;
  id: number;
  body: Reader;
  bytes: number;
}

/** Consecutive READs may overlap this much; everything else runs alone, in arrival order. */
const PARALLEL_READS = 16;
/** Stop starting READs while this much reply data waits for the client's SSH window. */
const OUTBOUND_LIMIT = 4 * 1024 * 1024;
/** Refuse more channel data (so ssh2 stops opening the SSH window) past this much queued work. */
const QUEUE_BYTES = 4 * 1024 * 1024;
const QUEUE_JOBS = 256;

/**
 * Recycles packet buffers (READ replies, WRITE requests): a 1 GiB download would otherwise allocate
 * 1 GiB of short-lived external memory and the GC dominates the profile. A reply buffer comes back
 * when the channel's write callback says ssh2 has sent (copied and encrypted) all of it.
 */
export class BufferPool implements ReplyBuffers {
  private readonly free: Buffer[] = [];
  private readonly mine = new WeakSet<ArrayBufferLike>();
  constructor(private readonly size: number, private readonly keep = 24) {}

  take(n: number): Buffer {
    if (n > this.size || n < 65_536) return Buffer.allocUnsafe(n);
    // allocUnsafeSlow: a buffer of its own, not zero-filled (new ArrayBuffer would be).
    const whole = this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
    this.mine.add(whole.buffer);
    return whole.subarray(0, n);
  }

  /** Called once nothing holds `b` any more. */
  give(b: Buffer): void {
    if (!this.mine.has(b.buffer) || this.free.length >= this.keep) return;
    this.mine.delete(b.buffer);
    this.free.push(Buffer.from(b.buffer, 0, this.size));
  }
}

/**
 * One SFTP subsystem channel: framing, scheduling, ordered replies, backpressure and shutdown.
 *
 * - Requests start in arrival order; runs of READs overlap, any other request is a barrier, so
 *   sshfs's pipelined OPEN(CREAT)+LSTAT sees the file it just created (research §4.2).
 * - Replies leave in request order: OpenSSH 9.1-9.3 scp truncates files otherwise (§4.1).
 * - Inbound: past a bounded queue the channel is paused, which withholds SSH window adjusts, so
 *   a client cannot make us buffer without limit (§4.4). Outbound: READs wait for 'drain'.
 * - Client EOF: finish queued work, send exit-status 0, close (§4.3: otherwise sftp hangs, scp exits 1).
 */
export class SftpSession {
  private readonly framer: PacketFramer;
  private readonly queue: Job[] = [];
  private queuedBytes = 0;
  private running = 0;
  private runningReads = false;
  private nextSeq = 0;
  private sendSeq = 0;
  private readonly replies = new Map<number, Buffer>();
  private initialized = false;
  private ended = false;
  private finished = false;
  private closed = false;
  private paused = false;

  constructor(
    private readonly channel: SftpChannel,
    private readonly ops: Operations,
    private readonly log: Logger,
    private readonly onActivity: () => void,
    private readonly pool: BufferPool | null = null,
    /** Holds the connection's socket writes until the end of this tick (see flush). */
    private readonly cork: () => void = () => undefined,
  ) {
    this.framer = new PacketFramer(pool ? (n) => pool.take(n) : undefined);
  }

  start(): void {
    // Channel data is taken straight from ssh2's push, never queued in the Readable: the framer
    // copies it before push returns, so the SSH layer can reuse the buffer under it (copiedOut),
    // and backpressure is push's own answer. The stream still carries the end of input.
    const push = this.channel.push.bind(this.channel);
    this.channel.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (!Buffer.isBuffer(chunk)) return push(chunk, encoding);
      this.onData(chunk);
      return !this.paused;
    };
    this.channel.resume();
    this.channel.on('end', () => {
      this.ended = true;
      this.maybeFinish();
    });
    this.channel.on('drain', () => this.pump());
    this.channel.on('error', (err: Error) => this.log.debug({ err }, 'sftp channel error'));
    this.channel.on('close', () => void this.cleanup());
  }

  /** Open handles right now (for tests and diagnostics). */
  get openHandles(): number {
    return this.ops.handles.size;
  }

  private onData(chunk: Buffer): void {
    this.onActivity();
    this.framer.push(chunk);
    // The framer copied every byte: the SSH layer may reuse the packet buffer under `chunk`.
    copiedOut(chunk);
    try {
      for (let pkt = this.framer.next(); pkt; pkt = this.framer.next()) this.accept(pkt);
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'sftp protocol error; closing the channel');
      this.abandon();
      return;
    }
    if (!this.paused && (this.queue.length > QUEUE_JOBS || this.queuedBytes > QUEUE_BYTES)) this.paused = true;
    this.pump();
  }

  private accept(pkt: Buffer): void {
    const type = pkt[0];
    if (!this.initialized) {
      if (type !== REQ.INIT || pkt.length < 5) throw new BadMessage('expected INIT');
      this.initialized = true;
      this.send(encode.version());
      return;
    }
    if (type === REQ.INIT || pkt.length < 5) throw new BadMessage('unexpected INIT or short packet');
    const job: Job = { packet: pkt, seq: this.nextSeq++, type, id: pkt.readUInt32BE(1), body: new Reader(pkt.subarray(5)), bytes: pkt.length };
    this.queue.push(job);
    this.queuedBytes += job.bytes;
  }

  private pump(): void {
    while (this.queue.length && !this.closed) {
      const job = this.queue[0];
      const isRead = job.type === REQ.READ;
      if (this.running > 0 && !(isRead && this.runningReads && this.running < PARALLEL_READS)) break;
      if (isRead && this.channel.writableLength > OUTBOUND_LIMIT) break;
      this.queue.shift();
      this.queuedBytes -= job.bytes;
      this.run(job, isRead);
      if (!isRead) break;
    }
    if (this.paused && this.queue.length < QUEUE_JOBS / 4 && this.queuedBytes < QUEUE_BYTES / 4) {
      this.paused = false;
      // After a refused push ssh2 opens the window again on the next _read.
      this.channel._read(0);
    }
    this.maybeFinish();
  }

  private run(job: Job, isRead: boolean): void {
    this.running++;
    this.runningReads = isRead;
    const handler = this.ops.handler(job.type);
    const work = handler
      ? handler(job.body, job.id)
      : Promise.resolve(encode.status(job.id, STATUS.OP_UNSUPPORTED, `request type ${job.type} is not supported`));
    work
      .catch((err: unknown) => {
        if (err instanceof BadMessage) return encode.status(job.id, STATUS.BAD_MESSAGE, err.message);
        const s = statusOf(err, this.log, { sftpRequest: job.type });
        return encode.status(job.id, s.code, s.message);
      })
      .then((reply) => {
        this.running--;
        // A WRITE's payload has been written (or refused) by now: its packet buffer is free again.
        if (job.type === REQ.WRITE) this.pool?.give(job.packet);
        this.replies.set(job.seq, reply);
        this.flush();
        if (this.closed) void this.cleanup();
        this.pump();
      })
      .catch((err: unknown) => this.log.error({ err }, 'sftp: reply failed'));
  }

  private flush(): void {
    // ssh2 writes every SSH packet (32 KiB of data at most) to the socket at once: corked, a batch
    // of replies leaves in one writev instead of dozens of write calls.
    if (this.replies.has(this.sendSeq)) this.cork();
    for (let r = this.replies.get(this.sendSeq); r; r = this.replies.get(this.sendSeq)) {
      this.replies.delete(this.sendSeq++);
      this.send(r);
    }
  }

  private send(packet: Buffer): void {
    if (this.closed || !this.channel.writable) return;
    const pool = this.pool;
    if (pool) this.channel.write(packet, () => pool.give(packet));
    else this.channel.write(packet);
  }

  private maybeFinish(): void {
    if (!this.ended || this.finished || this.queue.length || this.running) return;
    this.finished = true;
    if (!this.closed) {
      this.channel.exit(0);
      this.channel.end();
    }
  }

  /** Protocol error: drop queued work and close; handles are released by cleanup. */
  private abandon(): void {
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.finished = true;
    this.channel.exit(1);
    this.channel.end();
    this.channel.destroy();
  }

  /** Channel gone (client quit, disconnect, revocation): every handle is released, uploads discarded. */
  private async cleanup(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    for (const h of this.ops.handles.drain()) await releaseHandle(h);
  }
}
