import test from 'ava';
import { join } from 'node:path';
import { startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { makeFile, senderHome, type SenderHome } from '../helpers/cli.js';

let gw: TestGateway;
let alice: Account;
let home: SenderHome;
const MiB = 1024 * 1024;

test.before(async () => {
  gw = await startTestGateway();
  alice = await gw.sender('alice');
  home = await senderHome({ HANDOFF_SERVER: gw.url, HANDOFF_TOKEN: alice.token });
});
test.after.always(async () => {
  await home?.cleanup();
  await gw?.stop();
});

test('handoff status --follow prints each change until the upload is complete', async (t) => {
  const f = join(home.root, 'clip.bin');
  await makeFile(f, 12 * MiB);
  const sent = await home.run(['send', f, '--json'], { env: { HANDOFF_UPLOAD_RATE: String(3 * MiB) } });
  t.is(sent.code, 0, sent.stderr);
  const id = JSON.parse(sent.stdout).id as string;
  const follow = await home.run(['status', id, '--follow', '--json']);
  t.is(follow.code, 0, follow.stderr);
  const updates = follow.stdout.trim().split('\n').map((l) => JSON.parse(l) as { files: Array<{ state: string; bytes: number; size: number }> });
  t.true(updates.length >= 3, `${updates.length} updates`);
  const bytes = updates.map((u) => (u.files[0].state === 'complete' ? u.files[0].size : u.files[0].bytes));
  t.true(bytes.every((b, i) => i === 0 || b >= bytes[i - 1]), bytes.join());
  t.true(new Set(bytes).size >= 2, 'progress moved between updates');
  t.is(updates.at(-1)!.files[0].state, 'complete');
  const usage = await home.run(['status', '--follow']);
  t.is(usage.code, 2);
});
