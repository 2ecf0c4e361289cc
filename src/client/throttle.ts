import { Transform, type TransformCallback } from 'node:stream';

/** A token bucket shared by every upload of one process: HANDOFF_UPLOAD_RATE bytes/s in total (tests, slow links). */
export class RateLimiter {
  private available: number;
  private last = Date.now();
  constructor(readonly bytesPerSecond: number) {
    this.available = Math.min(bytesPerSecond, 256 * 1024);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): RateLimiter | null {
    const v = Number(env.HANDOFF_UPLOAD_RATE);
    return Number.isFinite(v) && v > 0 ? new RateLimiter(v) : null;
  }

  async take(n: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.available = Math.min(this.bytesPerSecond, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
      this.last = now;
      if (this.available >= n || this.available >= this.bytesPerSecond) {
        this.available -= n;
        return;
      }
      const wait = Math.min(200, Math.max(5, ((n - this.available) / this.bytesPerSecond) * 1000));
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  stream(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        this.take(chunk.length).then(() => cb(null, chunk), cb);
      },
    });
  }
}
