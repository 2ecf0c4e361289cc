import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { makeFile, senderHome, waitFor, type SenderHome } from '../helpers/cli.js';

const MiB = 1024 * 1024;
let gw: TestGateway | null = null;
let home: SenderHome;
let dataDir: string;

test.before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'handoff-restart-'));
});

test.after.always(async () => {
  await home?.cleanup();
  await gw?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

test('stopping the gateway during an upload and starting it again on the same dataDir and port: the upload completes without user action', async (t) => {
  gw = await startTestGateway({}, { dataDir });
  const port = gw.gateway.ports.http;
  const url = gw.url;
  const alice = await gw.sender('alice');
  home = await senderHome({ HANDOFF_SERVER: url, HANDOFF_TOKEN: alice.token, HANDOFF_UPLOAD_RATE: String(25 * MiB) });
  const file = join(home.root, 'restart.bin');
  const sha = await makeFile(file, 100 * MiB);
  const r = await home.run(['send', file, '--json']);
  t.is(r.code, 0, r.stderr);
  const id = JSON.parse(r.stdout).id as string;
  const api = (g: TestGateway) => g.api(alice.token, 'GET', `/api/v1/events/${id}`).then((x) => x.body.files[0] as { state: string; bytes: number; sha256: string });
  await waitFor('a third of the file', async () => (await api(gw!)).bytes >= 30 * MiB, 60_000, 100);

  const [pid] = await home.uploaderPids();
  t.truthy(pid);
  await gw.stop();
  gw = null;
  // While the gateway is away, status tells the user the uploader waits to retry.
  const down = await waitFor('the uploader to notice', async () => {
    const s = await home.run(['status', id]);
    return /waiting to retry/.test(s.stdout) && s;
  }, 20_000, 300);
  t.is(down.code, 1);
  t.regex(down.stderr, /cannot reach the gateway/);
  t.is(down.stderr.trim().split('\n').length, 1);

  gw = await startTestGateway({ http: { port }, publicUrl: url }, { dataDir });
  t.is(gw.url, url);
  const done = await waitFor('complete after the restart', async () => {
    const f = await api(gw!);
    return f.state === 'complete' && f;
  }, 90_000, 250);
  t.is(done.sha256, sha);
  // The same background process carried on: nothing was restarted by hand or by a command.
  const queue = JSON.parse(await readFile(join(home.env.XDG_DATA_HOME!, 'handoff', 'queues', id, 'queue.json'), 'utf8'));
  t.is(queue.uploader.pid, pid);
});
