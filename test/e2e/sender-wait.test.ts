import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { CLI, makeFile, senderHome, waitFor, type SenderHome } from '../helpers/cli.js';

const MiB = 1024 * 1024;
let gw: TestGateway;
let alice: Account;
let home: SenderHome;

test.before(async () => {
  gw = await startTestGateway();
  alice = await gw.sender('alice');
  home = await senderHome({ HANDOFF_SERVER: gw.url, HANDOFF_TOKEN: alice.token });
});

test.after.always(async () => {
  await home?.cleanup();
  await gw?.stop();
});

const eventFile = (id: string) => gw.api(alice.token, 'GET', `/api/v1/events/${id}`).then((r) => r.body.files[0] as { state: string; bytes: number; sha256: string });

test('send --wait shows progress in the foreground; Ctrl-C leaves it resumable and status finishes it in the background', async (t) => {
  const file = join(home.root, 'wait.bin');
  const sha = await makeFile(file, 40 * MiB);
  const child = spawn(process.execPath, [CLI, 'send', file, '--wait', '--json'], { env: { ...home.env, HANDOFF_UPLOAD_RATE: String(8 * MiB) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  const id = await waitFor('the event JSON', async () => {
    try {
      return JSON.parse(stdout).id as string;
    } catch {
      return null;
    }
  }, 20_000, 100);
  await waitFor('a quarter uploaded', async () => (await eventFile(id)).bytes >= 10 * MiB, 30_000, 100);
  child.kill('SIGINT');
  t.is(await exited, 130, stderr);
  t.regex(stderr, /stays resumable/);
  t.regex(stderr, /\d+% +[\d.]+ MiB of 40\.0 MiB +[\d.]+ (MiB|KiB)\/s +ETA/, 'a total progress line with rate and ETA');
  t.not((await eventFile(id)).state, 'complete');

  const status = await home.run(['status', id]);
  t.is(status.code, 0, status.stderr);
  const done = await waitFor('complete in the background', async () => {
    const f = await eventFile(id);
    return f.state === 'complete' && f;
  }, 60_000);
  t.is(done.sha256, sha);
});
