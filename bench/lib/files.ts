import { randomBytes } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

const BLOCK = randomBytes(MiB);

/**
 * A file of `size` bytes made of one random 1 MiB block repeated (with a per-file first block, so
 * files differ): fully written, never sparse, and quick to produce. Random content keeps
 * compression (should any layer try it) from flattering anybody.
 */
export async function makeFile(path: string, size: number): Promise<string> {
  const fh = await open(path, 'w', 0o644);
  try {
    const first = randomBytes(Math.min(MiB, size));
    await fh.write(first, 0, first.length, 0);
    let pos = first.length;
    while (pos < size) {
      const n = Math.min(MiB, size - pos);
      await fh.write(BLOCK, 0, n, pos);
      pos += n;
    }
  } finally {
    await fh.close();
  }
  return path;
}

/** `count` small random files named f-00000.bin … in `dir`. */
export async function makeSmallFiles(dir: string, count: number, size: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `f-${String(i).padStart(5, '0')}.bin`;
    await writeFile(join(dir, name), randomBytes(size));
    names.push(name);
  }
  return names;
}
