/**
 * Page-aligned I/O buffers, kept for reuse. The kernel's copies between the page cache or a socket
 * and a buffer ran at half speed when the buffer did not start on a page boundary: 1 GiB WebDAV
 * GETs through 1 MiB buffers at 16 bytes past a page boundary (where glibc puts a buffer it maps
 * for itself) ran at 1,085-1,155 MB/s, through the same buffers at a page boundary at
 * 1,918-2,110 MB/s (2026-12-07; `_copy_to_iter` from 19 % to 51 % of samples). Node's allocator
 * gives no alignment, so whether a GET was fast depended on where malloc happened to place its
 * buffers, which changed as the gateway aged (design notes, "Slow 1 GiB GETs").
 *
 * The memory of a WebAssembly.Memory starts on a page boundary, so one is made and cut into
 * buffers of a few sizes at page-multiple offsets. Its pages are only backed once used, so unused
 * pieces cost address space, not memory. When every piece of a size is out, `take` falls back to
 * an ordinary buffer, which is not kept.
 */
// The runtime global; the project's type libraries (ES2022, no DOM) do not declare it.
declare const WebAssembly: { Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };

export class AlignedBuffers {
  private readonly free = new Map<number, Buffer[]>();
  private readonly mine = new WeakSet<Buffer>();

  /** `pieces`: how many buffers of each size (a multiple of 4 KiB) to cut. */
  constructor(pieces: Array<{ size: number; count: number }>) {
    const total = pieces.reduce((n, p) => n + p.size * p.count, 0);
    const pages = Math.max(1, Math.ceil(total / 65_536));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    let offset = 0;
    for (const { size, count } of pieces) {
      if (size % 4096 !== 0) throw new Error(`pooled buffer size ${size} is not a multiple of 4 KiB`);
      const list: Buffer[] = [];
      for (let i = 0; i < count; i++, offset += size) {
        const b = Buffer.from(memory.buffer, offset, size);
        this.mine.add(b);
        list.push(b);
      }
      this.free.set(size, list);
    }
  }

  take(size: number): Buffer {
    return this.free.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
  }

  /** Only for a buffer nothing refers to any more (no write in flight from it). */
  give(buf: Buffer): void {
    if (this.mine.has(buf)) this.free.get(buf.length)!.push(buf);
  }

  /** Pieces of `size` not handed out. */
  idle(size: number): number {
    return this.free.get(size)?.length ?? 0;
  }
}
