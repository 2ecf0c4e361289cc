import test from 'ava';
import archiver from 'archiver';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';

const require = createRequire(import.meta.url);
const crc = require('crc-32') as { buf(b: Buffer, seed?: number): number; str(s: string, seed?: number): number };

test('crc-32 (native zlib shim) gives the standard CRC-32 values, chunked or whole', (t) => {
  t.is(crc.buf(Buffer.from('123456789')) >>> 0, 0xcbf43926);
  t.is(crc.str('123456789') >>> 0, 0xcbf43926);
  const data = randomBytes(300_000);
  let running = 0;
  for (let i = 0; i < data.length; i += 65536) running = crc.buf(data.subarray(i, i + 65536), running) >>> 0;
  t.is(running, crc.buf(data) >>> 0);
});

test('archiver zips built on the shim pass unzip -t (stored entries, streamed and buffered)', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v unzip'], { stdio: 'ignore' }).status !== 0) return t.pass('skipped: unzip is not installed (Debian package unzip)');
  const dir = await mkdtemp(join(tmpdir(), 'handoff-crc-'));
  try {
    const zip = archiver('zip', { store: true });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => sink.on('end', resolve));
    zip.pipe(sink);
    zip.append(Readable.from([randomBytes(1 << 20), randomBytes(12345)]), { name: 'streamed.bin', store: true });
    zip.append(randomBytes(4096), { name: 'buffered.bin', store: true });
    await zip.finalize();
    await ended;
    await writeFile(join(dir, 'a.zip'), Buffer.concat(chunks));
    const out = execFileSync('unzip', ['-t', join(dir, 'a.zip')]).toString();
    t.regex(out, /No errors detected/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
