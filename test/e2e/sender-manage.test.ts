import test from 'ava';
import { appendFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { oneLine, senderHome, waitFor, type SenderHome } from '../helpers/cli.js';

const MiB = 1024 * 1024;
let gw: TestGateway;
let alice: Account;
let home: SenderHome;

test.before(async () => {
  gw = await startTestGateway({ events: { maxQuotaBytes: 100 * MiB, quotaSlack: MiB } });
  alice = await gw.sender('alice');
  home = await senderHome();
});

test.after.always(async () => {
  await home?.cleanup();
  await gw?.stop();
});

const event = (id: string) => gw.api(alice.token, 'GET', `/api/v1/events/${id}`).then((r) => r.body);
const complete = (id: string, n: number) =>
  waitFor(`${n} complete files`, async () => (await event(id)).files.filter((f: { state: string }) => f.state === 'complete').length === n, 30_000);

test.serial('login saves a 0600 profile; wrong server and bad token are one-line errors', async (t) => {
  const bad = await home.run(['login', gw.url], { input: 'hnd_not-a-token\n' });
  t.is(bad.code, 1);
  t.true(oneLine(bad.stderr));
  t.regex(bad.stderr, /refused the token/);
  const nowhere = await home.run(['login', 'http://127.0.0.1:9', '--token', alice.token]);
  t.is(nowhere.code, 1);
  t.true(oneLine(nowhere.stderr));
  t.regex(nowhere.stderr, /cannot reach the gateway/);
  const notHandoff = await home.run(['login', `${gw.url}/static`, '--token', alice.token]);
  t.is(notHandoff.code, 1);
  t.true(oneLine(notHandoff.stderr));
  t.regex(notHandoff.stderr, /no Handoff API/);
  const notUrl = await home.run(['login', 'not a url', '--token', alice.token]);
  t.is(notUrl.code, 1);
  t.true(oneLine(notUrl.stderr));

  const ok = await home.run(['login', gw.url], { input: `${alice.token}\n` });
  t.is(ok.code, 0, ok.stderr);
  const profile = join(home.env.XDG_CONFIG_HOME!, 'handoff', 'profile.json');
  t.is((await stat(profile)).mode & 0o777, 0o600);
  const ls = await home.run(['ls']);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /no events yet/);
  const badToken = await home.run(['ls'], { env: { HANDOFF_TOKEN: 'hnd_wrong' } });
  t.is(badToken.code, 1);
  t.true(oneLine(badToken.stderr));
  t.regex(badToken.stderr, /refused the token/);
});

test.serial('send, ls, add, rm, recipients add|revoke, log, close, delete', async (t) => {
  const a = join(home.root, 'a.txt');
  const b = join(home.root, 'b.txt');
  await writeFile(a, 'alpha\n');
  await writeFile(b, 'bravo\n');
  const sent = await home.run(['send', a, '--title', 'Docs', '--recipient', 'Bob']);
  t.is(sent.code, 0, sent.stderr);
  const id = /^event ([a-z0-9]{26})/m.exec(sent.stdout)![1];
  t.regex(sent.stdout, /^web: +http:\/\/127\.0\.0\.1:\d+\/e\//m);
  t.regex(sent.stdout, /^webdav: /m);
  t.regex(sent.stdout, /^sftp: /m);
  t.regex(sent.stdout, /^recipient Bob: user \S+ +password \S+/m);
  await complete(id, 1);

  const ls = await home.run(['ls']);
  t.regex(ls.stdout, new RegExp(`${id} +open .*Docs`));
  const add = await home.run(['add', id, b]);
  t.is(add.code, 0, add.stderr);
  await complete(id, 2);
  const lsEvent = await home.run(['ls', id]);
  t.regex(lsEvent.stdout, /complete .* a\.txt/);
  t.regex(lsEvent.stdout, /complete .* b\.txt/);

  const rm = await home.run(['rm', id, 'a.txt']);
  t.is(rm.code, 0, rm.stderr);
  t.false((await event(id)).files.some((f: { path: string; state: string }) => f.path === 'a.txt' && f.state !== 'removed'));
  const rmMissing = await home.run(['rm', id, 'nope.txt']);
  t.is(rmMissing.code, 1);
  t.true(oneLine(rmMissing.stderr));

  const key = join(home.root, 'id.pub');
  await writeFile(key, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl carol@example\n');
  const carol = await home.run(['recipients', 'add', id, 'Carol', '--ssh-key', key, '--expires', '2d', '--max-downloads', '3', '--json']);
  t.is(carol.code, 0, carol.stderr);
  const c = JSON.parse(carol.stdout);
  t.truthy(c.password);
  t.is(c.maxDownloads, 3);
  t.truthy(c.expiresAt);
  const noKey = await home.run(['recipients', 'add', id, 'Dan', '--ssh-key', join(home.root, 'missing.pub')]);
  t.is(noKey.code, 1);
  t.true(oneLine(noKey.stderr));
  t.regex(noKey.stderr, /missing\.pub: no such file/);
  const badMax = await home.run(['recipients', 'add', id, 'Dan', '--max-downloads', 'many']);
  t.is(badMax.code, 2);
  t.true(oneLine(badMax.stderr));
  const dup = await home.run(['recipients', 'add', id, 'Carol']);
  t.is(dup.code, 1);
  t.true(oneLine(dup.stderr));
  const revoke = await home.run(['recipients', 'revoke', id, 'Carol']);
  t.is(revoke.code, 0, revoke.stderr);
  t.true((await event(id)).recipients.find((r: { name: string }) => r.name === 'Carol').revoked);
  const revokeNobody = await home.run(['recipients', 'revoke', id, 'Nobody']);
  t.is(revokeNobody.code, 1);
  t.true(oneLine(revokeNobody.stderr));

  const log = await home.run(['log', id]);
  t.is(log.code, 0, log.stderr);
  t.regex(log.stdout, /event\.create/);
  t.regex(log.stdout, /upload +b\.txt/);

  const close = await home.run(['close', id]);
  t.is(close.code, 0, close.stderr);
  t.true((await event(id)).closed);
  const addClosed = await home.run(['add', id, a]);
  t.is(addClosed.code, 1);
  t.true(oneLine(addClosed.stderr));
  t.regex(addClosed.stderr, /closed/);

  const del = await home.run(['delete', id]);
  t.is(del.code, 0, del.stderr);
  t.is((await event(id)).state, 'deleted');
  const addDeleted = await home.run(['add', id, a]);
  t.is(addDeleted.code, 1);
  t.true(oneLine(addDeleted.stderr));
  t.regex(addDeleted.stderr, /410/);
});

test.serial('expired event (410), full quota (413), vanished file and usage errors are one-line errors', async (t) => {
  const a = join(home.root, 'x.txt');
  await writeFile(a, 'x\n');
  const short = await home.run(['send', a, '--expires', '2s', '--json']);
  t.is(short.code, 0, short.stderr);
  const id = JSON.parse(short.stdout).id;
  await new Promise((r) => setTimeout(r, 2500));
  const late = await home.run(['add', id, a]);
  t.is(late.code, 1);
  t.true(oneLine(late.stderr));
  t.regex(late.stderr, /expired.*410/);

  const huge = join(home.root, 'huge.bin');
  await writeFile(huge, '');
  await truncate(huge, 200 * MiB); // sparse: the manifest alone is over quota
  const full = await home.run(['send', huge]);
  t.is(full.code, 1);
  t.true(oneLine(full.stderr));
  t.regex(full.stderr, /413/);

  const gone = await home.run(['send', join(home.root, 'vanished.bin')]);
  t.is(gone.code, 1);
  t.true(oneLine(gone.stderr));
  t.regex(gone.stderr, /vanished\.bin: no such file/);

  for (const args of [['send'], ['ls', 'not-an-event'], ['send', a, '--expires', 'soon'], ['recipients', 'add'], ['status', 'x/y']]) {
    const r = await home.run(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.true(oneLine(r.stderr), `${args.join(' ')}: ${r.stderr}`);
  }
});

test.serial('a file changed on disk after it was announced fails clearly instead of uploading mixed content', async (t) => {
  const f = join(home.root, 'changing.bin');
  await writeFile(f, Buffer.alloc(4 * MiB, 1));
  const r = await home.run(['send', f, '--json'], { env: { HANDOFF_UPLOAD_RATE: String(MiB) } });
  t.is(r.code, 0, r.stderr);
  const id = JSON.parse(r.stdout).id;
  await appendFile(f, 'more');
  let last = '';
  const failed = await waitFor('the upload to fail', async () => {
    const s = await home.run(['status', id, '--json']);
    last = s.stdout + s.stderr;
    const local = JSON.parse(s.stdout).local;
    return local.files[0].state === 'failed' && local;
  }, 30_000, 300).catch((err: Error) => {
    throw new Error(`${err.message}; last status: ${last.slice(0, 1500)}`);
  });
  t.regex(failed.files[0].error, /changed on disk after it was announced/);
  // The file fails first; the uploader then records its own end and exits.
  const status = await waitFor('the uploader to report the failure', async () => {
    const s = await home.run(['status', id]);
    return /uploader: failed: .*changed on disk/.test(s.stdout) && s;
  }, 30_000, 300);
  t.regex(status.stdout, /uploader: failed: .*changed on disk/);
  t.not((await event(id)).files[0].state, 'complete');
});
