/**
 * Sender figures (not a test: timings belong here). `node dist/bench/sender.js`
 * - time from `handoff send` start to the addresses and credentials on stdout, and to its exit,
 *   for three files (one 300 MiB): the "within one second" of issue 6;
 * - unthrottled background upload time of those files over loopback;
 * - `cp` of 200 MiB into `handoff mount` versus `cp` to a local folder.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startTestGateway } from '../test/helpers/gateway.js';
import { CLI, makeFile, senderHome, waitFor } from '../test/helpers/cli.js';

const MiB = 1024 * 1024;

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ first: number; exit: number; stdout: string; code: number }> {
  return new Promise((done) => {
    const t0 = performance.now();
    let first = -1;
    let stdout = '';
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout.on('data', (d: Buffer) => {
      if (first < 0) first = performance.now() - t0;
      stdout += d;
    });
    c.on('close', (code) => done({ first, exit: performance.now() - t0, stdout, code: code ?? -1 }));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const gw = await startTestGateway();
  const alice = await gw.sender('alice');
  const home = await senderHome({ HANDOFF_SERVER: gw.url, HANDOFF_TOKEN: alice.token });
  const rows: Array<[string, string]> = [];
  try {
    const dir = join(home.root, 'footage');
    await mkdir(dir);
    await makeFile(join(dir, 'big.bin'), 300 * MiB);
    await makeFile(join(dir, 'mid.bin'), 5 * MiB);
    await writeFile(join(dir, 'notes.txt'), 'hello\n');
    const firsts: number[] = [];
    const exits: number[] = [];
    const uploads: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await timed(process.execPath, [CLI, 'send', dir, '--recipient', 'Bob', '--json'], home.env);
      if (r.code !== 0) throw new Error(`send exited ${r.code}`);
      firsts.push(r.first);
      exits.push(r.exit);
      const id = JSON.parse(r.stdout).id as string;
      await waitFor('upload', async () => (await gw.api(alice.token, 'GET', `/api/v1/events/${id}`)).body.files.every((f: { state: string }) => f.state === 'complete'), 300_000, 100);
      uploads.push(performance.now() - t0);
    }
    rows.push(['send: addresses + credentials printed (median of 5)', `${median(firsts).toFixed(0)} ms`]);
    rows.push(['send: process exited (median of 5)', `${median(exits).toFixed(0)} ms`]);
    rows.push(['background upload of 305 MiB, 3 files, loopback (median)', `${(median(uploads) / 1000).toFixed(1)} s (${((305 * MiB) / MiB / (median(uploads) / 1000)).toFixed(0)} MiB/s)`]);

    if (existsSync('/dev/fuse')) {
      const sent = JSON.parse((await timed(process.execPath, [CLI, 'send', join(dir, 'notes.txt'), '--json'], home.env)).stdout);
      const mnt = join(home.root, 'mnt');
      const local = join(home.root, 'local');
      await mkdir(mnt);
      await mkdir(local);
      const src = join(home.root, 'copy.bin');
      await makeFile(src, 200 * MiB);
      const m = spawn(process.execPath, [CLI, 'mount', sent.id, mnt], { env: { ...home.env, HANDOFF_UPLOAD_RATE: String(20 * MiB) }, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      m.stdout.on('data', (d: Buffer) => (out += d));
      await waitFor('mount', async () => /mounted/.test(out), 20_000, 100);
      const localCp = await timed('cp', [src, join(local, 'copy.bin')], home.env);
      const fuseCp = await timed('cp', [src, join(mnt, 'copy.bin')], home.env);
      await timed('fusermount', ['-u', mnt], home.env);
      rows.push(['cp 200 MiB to a local folder', `${(localCp.exit / 1000).toFixed(2)} s`]);
      rows.push(['cp 200 MiB into handoff mount (upload throttled to 20 MiB/s)', `${(fuseCp.exit / 1000).toFixed(2)} s`]);
    }
  } finally {
    await home.cleanup();
    await gw.stop();
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
