import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { sha256 } from '../helpers/http.js';
import { sftpBatch, sha256File, type RunResult } from '../helpers/sftp.js';
import { hasTool, missingToolMessage } from '../helpers/tools.js';
import { createUpload, slowPatch } from '../helpers/tus.js';

let g: TestGateway;
let alice: Account;
let dir: string;

test.before(async () => {
  g = await startTestGateway({ live: { pendingWaitSeconds: 5, stallSeconds: 20 } });
  alice = await g.sender('alice');
  dir = await mkdtemp(join(tmpdir(), 'handoff-live-sftp-'));
});
test.after.always(async () => {
  await g?.stop();
  await rm(dir, { recursive: true, force: true });
});

const tools = () => hasTool('sftp') && hasTool('sshpass');

async function eventWith(path: string, data: Buffer) {
  return (await g.api(alice.token, 'POST', '/api/v1/events', { files: [{ path, size: data.length, sha256: sha256(data) }], recipients: [{ name: 'Sam' }] })).body as {
    id: string;
    recipients: Array<{ username: string; password: string }>;
  };
}

test.serial('OpenSSH sftp get of a file still uploading follows it to the exact bytes', async (t) => {
  if (!tools()) return t.pass(missingToolMessage('sftp / sshpass', 'openssh-client sshpass'));
  const data = randomBytes(48 * 1024 * 1024);
  const ev = await eventWith('live.bin', data);
  const up = await createUpload(g.url, alice.token, ev.id, 'live.bin', data.length);
  const r = ev.recipients[0];
  const out = join(dir, 'live.bin');
  let getting: Promise<RunResult> | null = null;
  const status = await slowPatch(up.location!, alice.token, 0, data, {
    piece: 512 * 1024, tickMs: 20,
    onProgress: (sent) => {
      if (!getting && sent >= data.length / 10) getting = sftpBatch({ port: g.gateway.ports.sftp, user: r.username, password: r.password }, [`get live.bin ${out}`]);
    },
  });
  t.is(status, 204);
  const res = await getting!;
  t.is(res.code, 0, res.stderr);
  t.is((await stat(out)).size, data.length);
  t.is(await sha256File(out), sha256(data));
});

test.serial('an upload aborted mid-way makes OpenSSH sftp get fail', async (t) => {
  if (!tools()) return t.pass(missingToolMessage('sftp / sshpass', 'openssh-client sshpass'));
  const data = randomBytes(16 * 1024 * 1024);
  const ev = await eventWith('cut.bin', data);
  const up = await createUpload(g.url, alice.token, ev.id, 'cut.bin', data.length);
  const r = ev.recipients[0];
  let getting: Promise<RunResult> | null = null;
  await slowPatch(up.location!, alice.token, 0, data, {
    piece: 256 * 1024, tickMs: 10, abortAt: data.length / 2,
    onProgress: (sent) => {
      if (!getting && sent >= data.length / 8) getting = sftpBatch({ port: g.gateway.ports.sftp, user: r.username, password: r.password }, [`get cut.bin ${join(dir, 'cut.bin')}`]);
    },
  });
  const del = await fetch(up.location!, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0', authorization: `Bearer ${alice.token}` } });
  t.is(del.status, 204);
  const res = await getting!;
  t.not(res.code, 0, 'sftp reports the failure instead of keeping a short file as success');
});
