import { randomFillSync } from 'node:crypto';

/**
 * Cryptographically random bytes handed out from a refilled 4 KiB buffer. Each randomFillSync /
 * randomBytes call costs some 3-4 µs here whatever its size, and a small upload needs several (ids,
 * SSH packet padding); a pool makes that one call per 4 KiB, as Node does for randomUUID. Every
 * byte is handed out once.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let position = POOL_SIZE;

/** Fills `target[offset, offset + length)` with random bytes. */
export function fillRandom(target: Buffer, offset: number, length: number): void {
  if (length > POOL_SIZE / 4) {
    randomFillSync(target, offset, length);
    return;
  }
  if (position + length > POOL_SIZE) {
    randomFillSync(pool);
    position = 0;
  }
  pool.copy(target, offset, position, position + length);
  // Not left behind in memory once used.
  pool.fill(0, position, position + length);
  position += length;
}

export function randomBytesPooled(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  fillRandom(out, 0, length);
  return out;
}
