import test from 'ava';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { safeNext } from '../../src/admin/security.js';
import { SessionStore } from '../../src/admin/sessions.js';
import { migrate } from '../../src/db/migrate.js';
import { SqliteDatabase } from '../../src/db/sqlite.js';
import { packageRoot } from '../../src/shared/packageRoot.js';

const MIN = 60_000;

async function store(t: { teardown: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-sess-'));
  const db = await SqliteDatabase.open(join(dir, 'db.sqlite'));
  await migrate(db);
  await db.run("INSERT INTO users (id, name, role, password_hash, created_at, updated_at) VALUES (1, 'root', 'admin', 'x', 0, 0)");
  let now = 1_000_000;
  const s = new SessionStore(db, { idleMs: 30 * MIN, absoluteMs: 12 * 60 * MIN, secure: false }, () => now);
  t.teardown(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { s, db, advance: (ms: number) => (now += ms) };
}

test('a session dies after the idle timeout but lives while used', async (t) => {
  const { s, advance } = await store(t);
  const a = await s.create(1, 'tag', '127.0.0.1');
  for (let i = 0; i < 6; i++) {
    advance(20 * MIN);
    t.truthy(await s.load(a.id), `alive after ${(i + 1) * 20} busy minutes`);
  }
  advance(30 * MIN);
  t.is(await s.load(a.id), null);
});

test('a session dies at the absolute limit however busy it is', async (t) => {
  const { s, advance } = await store(t);
  const a = await s.create(1, 'tag', null);
  for (let i = 0; i < 35; i++) {
    advance(20 * MIN);
    t.truthy(await s.load(a.id));
  }
  advance(60 * MIN); // 12 h 40 min since login
  t.is(await s.load(a.id), null);
});

test('heartbeats that do not touch do not keep a session alive', async (t) => {
  const { s, advance } = await store(t);
  const a = await s.create(1, 'tag', null);
  for (let i = 0; i < 5; i++) {
    advance(5 * MIN);
    t.truthy(await s.load(a.id, false));
  }
  advance(6 * MIN);
  t.is(await s.load(a.id, false), null);
});

test('pre-login visitors get no row; ids are random and stored hashed', async (t) => {
  const { s, db } = await store(t);
  const anon = await s.anonymous();
  const other = await s.anonymous();
  t.not(anon.id, other.id);
  t.not(anon.csrf, other.csrf);
  t.is((await s.anonymous(anon.id)).csrf, anon.csrf, 'the login token is derived from the cookie id');
  t.is((await db.query('SELECT * FROM admin_sessions')).length, 0);
  t.is(await s.load(anon.id), null, 'a pre-login id is no session');
  const a = await s.create(1, 'tag', null);
  t.not(a.csrf, (await s.anonymous(a.id)).csrf);
  t.regex(a.id, /^[A-Za-z0-9_-]{43}$/); // 256 bits
  const rows = await db.query<{ id_hash: string }>('SELECT id_hash FROM admin_sessions');
  t.is(rows.length, 1);
  t.false(rows.some((r) => r.id_hash === a.id));
  t.is(await s.load('not-a-session'), null);
});

test('destroy and destroyForUser end sessions; sweep drops expired rows', async (t) => {
  const { s, db, advance } = await store(t);
  const a = await s.create(1, 'tag', null);
  const b = await s.create(1, 'tag', null);
  const c = await s.create(1, 'tag', null);
  await s.destroy(a);
  t.is(await s.load(a.id), null);
  t.is(await s.destroyForUser(1, c), 1);
  t.is(await s.load(b.id), null);
  t.truthy(await s.load(c.id));
  advance(13 * 60 * MIN);
  await s.create(1, 'tag', null); // triggers the sweep
  const left = await db.query('SELECT * FROM admin_sessions');
  t.is(left.length, 1, 'only the new session is left');
});

test('cookie attributes: HttpOnly, SameSite=Strict; Secure and __Host- only behind TLS', (t) => {
  const plain = new SessionStore({} as never, { idleMs: 1, absoluteMs: 1, secure: false });
  const tls = new SessionStore({} as never, { idleMs: 1, absoluteMs: 1, secure: true });
  t.is(plain.cookie('v'), 'handoff-admin=v; Path=/admin; HttpOnly; SameSite=Strict');
  t.is(tls.cookie('v'), '__Host-handoff-admin=v; Path=/; HttpOnly; SameSite=Strict; Secure');
});

test('safeNext keeps panel paths and refuses everything that could leave the origin (A9)', (t) => {
  const fallback = '/admin/';
  for (const ok of ['/admin/', '/admin/users', '/admin/events/abc?page=2', '/admin']) t.is(safeNext(ok), ok, ok);
  const bad = [
    '//e.x', '///e.x', '////e.x', '/\\e.x', '\\\\e.x', 'https:e.x', 'https://e.x', 'http://127.0.0.1/admin/', '%2F%2Fe.x', '/%09/e.x',
    '/\t/e.x', '/\n/e.x', 'javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,x', '', ' /admin/', '/e/abc', '/admin/../e/x',
    '/admin/login?next=//e.x', '/admin\\@e.x', '/.//e.x', '//admin/', 'e.x', '/admin/%2e%2e/%2e%2e/e/x',
  ];
  for (const b of bad) {
    const out = safeNext(b);
    t.true(out.startsWith('/admin') && !out.startsWith('//'), `${JSON.stringify(b)} → ${out}`);
    t.true(out === fallback || out.startsWith('/admin/'), `${JSON.stringify(b)} → ${out}`);
    t.not(new URL(out, 'http://panel.example').host, 'e.x');
  }
  t.is(safeNext(42), fallback);
  t.is(safeNext(['/admin/users']), fallback);
});

test('admin views print user data only with <%= (<%- only for include)', async (t) => {
  const dir = join(packageRoot(), 'src', 'admin', 'views');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ejs'));
  t.true(files.length >= 8);
  for (const f of files) {
    const text = await readFile(join(dir, f), 'utf8');
    for (const m of text.matchAll(/<%-(.*?)%>/gs)) t.regex(m[1], /^\s*include\('[_a-z]+'\)\s*$/, `${f}: ${m[0]}`);
    t.false(/<%[^=\-#\s_]/.test(text.replace(/<%%/g, '')), `${f}: unusual ejs tag`);
  }
});
