/**
 * Big I/O buffers kept for the next download instead of freed. A buffer glibc hands out fresh for
 * each download (above its mmap threshold) made the kernel's copy into it up to three times
 * slower once the gateway had served many small requests: 1 GiB WebDAV GETs fell from about
 * 2,000 to 1,150 MB/s after 60,000 authenticated 4 KiB GETs, `_copy_to_iter` going from 19 % to
 * 51 % of samples, and stayed fast when glibc kept its memory (design notes, "Slow 1 GiB GETs").
 * Keeping our own few buffers gets that without making glibc keep everything else too.
 *
 * Idle buffers are capped in bytes, so the pool never holds more than `maxIdleBytes` whatever
 * the peak; buffers are pooled by exact size (callers round sizes to a few classes).
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private idle = 0;

  constructor(private readonly maxIdleBytes: number) {}

  take(size: number): Buffer {
    const buf = this.free.get(size)?.pop();
    if (!buf) return Buffer.allocUnsafeSlow(size);
    this.idle -= size;
    return buf;
  }

  /** Only for a buffer nothing else refers to any more (no write in flight from it). */
  give(buf: Buffer): void {
    if (this.idle + buf.length > this.maxIdleBytes) return;
    let list = this.free.get(buf.length);
    if (!list) this.free.set(buf.length, (list = []));
    list.push(buf);
    this.idle += buf.length;
  }

  get idleBytes(): number {
    return this.idle;
  }
}
