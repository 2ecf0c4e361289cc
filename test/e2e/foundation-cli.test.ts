import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { cli, serveChild } from '../helpers/cli.js';

let dir: string;
let config: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-cli-'));
  config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ dataDir: join(dir, 'var'), http: { port: 0 }, sftp: { port: 0 }, auth: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } } }));
});
test.after.always(async () => rm(dir, { recursive: true, force: true }));

test.serial('user and token commands', (t) => {
  const add = cli(['user', 'add', 'ops', '--role', 'admin', '--config', config]);
  t.is(add.status, 0, add.stderr);
  t.regex(add.stdout, /created admin ops\npassword: \S{20,}/);
  const withPw = cli(['user', 'add', 'alice', '--role', 'sender', '--password-stdin', '--config', config], { input: 'correct horse battery staple\n' });
  t.is(withPw.status, 0, withPw.stderr);
  t.notRegex(withPw.stdout, /password:/);
  const dup = cli(['user', 'add', 'alice', '--role', 'sender', '--config', config]);
  t.is(dup.status, 1);
  t.is(dup.stderr.trim().split('\n').length, 1);
  t.regex(dup.stderr, /already exists/);
  const short = cli(['user', 'passwd', 'alice', '--password-stdin', '--config', config], { input: 'short' });
  t.is(short.status, 1);
  t.regex(short.stderr, /at least 12/);
  t.is(cli(['user', 'passwd', 'alice', '--password-stdin', '--config', config], { input: 'another long passphrase' }).status, 0);
  const list = cli(['user', 'list', '--json', '--config', config]);
  t.deepEqual((JSON.parse(list.stdout) as Array<{ name: string }>).map((u) => u.name), ['alice', 'ops']);
  const token = cli(['token', 'create', 'alice', '--config', config]);
  t.is(token.status, 0);
  t.regex(token.stdout.trim(), /^hnd_[A-Za-z0-9_-]{43}$/);
  t.is(cli(['token', 'create', 'nobody', '--config', config]).status, 1);
  const badRole = cli(['user', 'add', 'x', '--role', 'root', '--config', config]);
  t.is(badRole.status, 1);
  t.is(cli(['user', 'remove', 'ops', '--config', config]).status, 0);
});

test('usage errors exit 2, help exits 0', (t) => {
  t.is(cli(['--help']).status, 0);
  t.is(cli(['user', 'add', '--help']).status, 0);
  t.is(cli(['frobnicate']).status, 2);
  t.is(cli(['user', 'add', 'x']).status, 2, 'missing --role');
});

test('config errors stop start-up with one line naming the key', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ http: { port: 0, colour: 'red' } }, /unknown key http\.colour/],
    [{ htpp: {} }, /unknown key htpp/],
    [{ http: { port: 'eighty' } }, /http\.port/],
    [{ events: { defaultTtl: 'forever' } }, /events\.defaultTtl/],
    [{ publicUrl: 'ftp://x' }, /publicUrl/],
  ];
  for (const [body, msg] of cases) {
    const f = join(dir, 'bad.json');
    await writeFile(f, JSON.stringify(body));
    const r = cli(['check', '--config', f]);
    t.is(r.status, 1, JSON.stringify(body));
    t.regex(r.stderr, msg);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  await writeFile(join(dir, 'broken.json'), '{');
  t.regex(cli(['check', '--config', join(dir, 'broken.json')]).stderr, /not valid JSON/);
  const viaEnv = cli(['check'], { env: { HANDOFF_CONFIG: join(dir, 'bad.json') } });
  t.is(viaEnv.status, 1);
});

test('check validates and prints what would be served', (t) => {
  const r = cli(['check', '--config', config]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /config ok/);
  t.regex(r.stdout, /storage: local /);
});

test('serve prints the chosen port, serves /healthz and stops cleanly on SIGTERM', async (t) => {
  const { child, url, output } = await serveChild(config);
  t.regex(output(), /^http listening on http:\/\/127\.0\.0\.1:\d+$/m);
  const res = await fetch(`${url}/healthz`);
  t.is(res.status, 200);
  t.deepEqual(await res.json(), { status: 'ok' });
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.is(code, 0);
  t.notRegex(output(), /password|hnd_/);
});
