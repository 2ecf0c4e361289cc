import test from 'ava';
import { listRoutes } from '../../src/admin/router.js';
import { AdminClient, httpExchange, type HttpAnswer } from '../helpers/adminHttp.js';
import { startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
let root: Account;
let eventId: string;

test.before(async () => {
  gw = await startTestGateway({ auth: { lockout: { attempts: 1000 } } });
  root = await gw.admin('root');
  const alice = await gw.sender('alice');
  const ev = await gw.api(alice.token, 'POST', '/api/v1/events', { title: 'throwaway', files: [{ path: 'a.txt', size: 3 }], recipients: [{ name: 'Bob' }] });
  eventId = ev.body.id;
});
test.after.always(() => gw?.stop());

const setCookies = (a: HttpAnswer) => ([] as string[]).concat(a.headers['set-cookie'] ?? []);

function fill(path: string): string {
  return path.replace(':id', eventId).replace(':name', 'nobody-here').replace('*path', 'x');
}

test.serial('every state-changing route refuses a missing token, a foreign token and a foreign Origin (A6)', async (t) => {
  const routes = listRoutes(gw.gateway.adminPanel!.router);
  t.true(routes.length >= 25, `found ${routes.length} routes`);
  const unsafe = routes.filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method));
  t.true(unsafe.length >= 18, `found ${unsafe.length} state-changing routes`);
  t.true(unsafe.some((r) => r.path === '/events/:id/recipients/revoke'));
  // Logout and login change the session itself: they go last.
  const order = (p: string) => (p === '/logout' ? 2 : p === '/login' ? 1 : 0);
  unsafe.sort((a, b) => order(a.path) - order(b.path));

  const a = new AdminClient(gw.url);
  const b = new AdminClient(gw.url);
  t.is((await a.login(root.name, root.password)).status, 303);
  t.is((await b.login(root.name, root.password)).status, 303);
  t.truthy(a.csrf && b.csrf && a.csrf !== b.csrf);
  const before = await gw.gateway.accounts.count();
  for (const r of unsafe) {
    const path = `/admin${fill(r.path)}`;
    const label = `${r.method} ${r.path}`;
    const noToken = await a.post(path, { name: 'csrf-victim', role: 'admin', confirm: 'yes' }, { csrf: null });
    t.is(noToken.status, 403, `${label} without a token`);
    const foreign = await a.post(path, { name: 'csrf-victim', role: 'admin', confirm: 'yes' }, { csrf: b.csrf });
    t.is(foreign.status, 403, `${label} with another session's token`);
    const crossSite = await a.post(path, { name: 'csrf-victim', role: 'admin', confirm: 'yes' }, { origin: 'https://evil.example' });
    t.is(crossSite.status, 403, `${label} from a foreign Origin`);
    const nullOrigin = await a.post(path, { name: 'csrf-victim', role: 'admin', confirm: 'yes' }, { origin: 'null' });
    t.is(nullOrigin.status, 403, `${label} from a null Origin`);
    const noSession = await a.post(path, {}, { cookie: null });
    t.is(noSession.status, 403, `${label} without a session`);
  }
  t.is(await gw.gateway.accounts.count(), before, 'no refused request created an account');
  t.is((await gw.api(root.token, 'GET', `/api/v1/events/${eventId}`)).body.state, 'open', 'no refused request touched the event');
  // The same requests with the right token from our own origin pass the guard (whatever the route then says).
  for (const r of unsafe) {
    const ok = await a.post(`/admin${fill(r.path)}`, {});
    t.not(ok.status, 403, `${r.method} ${r.path} with a valid token`);
  }
});

test.serial('security headers on every page, error pages and static files', async (t) => {
  const c = new AdminClient(gw.url);
  const anonymous = await c.get('/admin/login');
  await c.login(root.name, root.password);
  const gets = listRoutes(gw.gateway.adminPanel!.router).filter((r) => r.method === 'GET' && !r.path.endsWith('/live'));
  const answers: Array<[string, HttpAnswer]> = [['/admin/login (anonymous)', anonymous]];
  for (const r of gets) answers.push([r.path, await c.get(`/admin${fill(r.path).replace('nobody-here', 'alice')}`)]);
  for (const p of ['/admin/no-such-page', '/admin/static/admin.js', '/admin/static/admin.css', `/admin/events/${'0'.repeat(26)}`]) answers.push([p, await c.get(p)]);
  for (const [path, a] of answers) {
    const csp = String(a.headers['content-security-policy']);
    t.regex(csp, /script-src 'self'/, path);
    t.regex(csp, /frame-ancestors 'none'/, path);
    t.notRegex(csp, /unsafe-inline|unsafe-eval/, path);
    t.is(a.headers['x-content-type-options'], 'nosniff', path);
    t.truthy(a.headers['referrer-policy'], path);
    t.is(a.headers['x-frame-options'], 'DENY', path);
  }
  t.true(answers.filter(([, a]) => a.status === 200).length >= 8);
});

test.serial('the session id changes at login, the old one is dead, logout kills the session (A10)', async (t) => {
  const c = new AdminClient(gw.url);
  const loginPage = await c.get('/admin/login');
  const cookie = setCookies(loginPage)[0];
  t.regex(cookie, /HttpOnly/);
  t.regex(cookie, /SameSite=Strict/);
  t.notRegex(cookie, /Secure/); // plain HTTP here; see admin-tls for HTTPS
  const preLogin = c.cookie!;
  await c.post('/admin/login', { username: root.name, password: root.password });
  const signedIn = c.cookie!;
  t.not(signedIn, preLogin);
  // The pre-login id is gone: it cannot be used to sign in or act.
  const replay = await httpExchange(`${gw.url}/admin/`, { headers: { cookie: `handoff-admin=${preLogin}` } });
  t.is(replay.status, 303);
  t.regex(String(replay.headers.location), /^\/admin\/login\?next=/);
  t.is((await c.get('/admin/')).status, 200);
  t.is((await c.post('/admin/logout', {})).status, 303);
  const after = await httpExchange(`${gw.url}/admin/users`, { headers: { cookie: `handoff-admin=${signedIn}` } });
  t.is(after.status, 303, 'the old cookie is dead after logout');
  t.is(after.headers.location, '/admin/login?next=%2Fadmin%2Fusers');
});

test.serial('anonymous visitors never make the session table grow', async (t) => {
  const count = async () => (await gw.gateway.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM admin_sessions'))!.n;
  const before = await count();
  for (let i = 0; i < 20; i++) await new AdminClient(gw.url).get('/admin/login');
  const c = new AdminClient(gw.url);
  await c.get('/admin/login');
  await c.post('/admin/login', { username: root.name, password: 'not the password' });
  t.is(await count(), before);
  await c.post('/admin/login', { username: root.name, password: root.password });
  t.is(await count(), before + 1, 'one row per signed-in session');
});

test.serial('?next= only leads to panel paths (A9)', async (t) => {
  const attempts: Array<[string, string]> = [
    ['/admin/users', '/admin/users'],
    ['//e.x', '/admin/'], ['/\\e.x', '/admin/'], ['https:e.x', '/admin/'], ['%2F%2Fe.x', '/admin/'], ['/%09/e.x', '/admin/'],
    ['javascript:alert(1)', '/admin/'], ['https://evil.example/admin/', '/admin/'], ['/admin/../e/x', '/admin/'],
  ];
  for (const [next, expected] of attempts) {
    const c = new AdminClient(gw.url);
    const a = await c.login(root.name, root.password, next);
    t.is(a.status, 303, next);
    t.is(a.headers.location, expected, next);
  }
  // Already signed in, /login?next= redirects the same way.
  const c = new AdminClient(gw.url);
  await c.login(root.name, root.password);
  t.is((await c.get(`/admin/login?next=${encodeURIComponent('//evil.example')}`)).headers.location, '/admin/');
  t.is((await c.get(`/admin/login?next=${encodeURIComponent('/admin/lockouts')}`)).headers.location, '/admin/lockouts');
});

test.serial('only admins get in; disabling an admin ends their session', async (t) => {
  const sender = await gw.sender('carol');
  const c = new AdminClient(gw.url);
  const refused = await c.login(sender.name, sender.password);
  t.is(refused.status, 403);
  t.regex(refused.text, /not an admin/);
  const wrong = await c.login(root.name, 'wrong password here');
  t.is(wrong.status, 401);
  t.regex(wrong.text, /Wrong username or password/);

  const other = await gw.admin('second');
  const victim = new AdminClient(gw.url);
  await victim.login(other.name, other.password);
  t.is((await victim.get('/admin/')).status, 200);
  const boss = new AdminClient(gw.url);
  await boss.login(root.name, root.password);
  await boss.get(`/admin/users/${other.name}`);
  t.is((await boss.post(`/admin/users/${other.name}/disable`, {})).status, 303);
  t.is((await victim.get('/admin/')).status, 303, 'the disabled admin is signed out');
  // An admin cannot disable themself.
  const self = await boss.post(`/admin/users/${root.name}/disable`, {});
  t.is(self.status, 303);
  const page = await boss.get(`/admin/users/${root.name}`);
  t.regex(page.text, /cannot disable the account you are signed in with/);
});

test.serial('odd requests get a 4xx page, never a 500', async (t) => {
  const c = new AdminClient(gw.url);
  await c.login(root.name, root.password);
  for (const p of ['/admin/static/', '/admin/static/nope.js', '/admin/static/..%2Fviews%2Flogin.ejs', '/admin/events/%E0%A4%A', '/admin/users/%00', `/admin/events/${eventId}/log?page=-3&since=%ZZ`]) {
    const a = await c.get(p);
    t.true(a.status >= 300 && a.status < 500, `${p} → ${a.status}`);
    t.notRegex(a.text, /<%|ejs|at .*\.js:\d+/, `${p} leaks no template or stack`);
  }
  const many = await c.post('/admin/users', Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}`, 'x'])));
  t.is(many.status, 413);
  const big = await c.post('/admin/users', { name: 'x'.repeat(70_000) });
  t.is(big.status, 413);
  const long = await c.post('/admin/users', { name: 'x'.repeat(5000), role: 'sender' });
  t.is(long.status, 303, 'an over-long field is refused with a message');
});

test.serial('a password change ends the sessions opened with the old password', async (t) => {
  const admin = await gw.admin('rotating');
  const a = new AdminClient(gw.url);
  const b = new AdminClient(gw.url);
  await a.login(admin.name, admin.password);
  await b.login(admin.name, admin.password);
  // Resetting your own password in the panel keeps that session and ends the others.
  await a.get(`/admin/users/${admin.name}`);
  const reset = await a.post(`/admin/users/${admin.name}/password`, {});
  t.is(reset.status, 201);
  const newPassword = /id="issued-secret" value="([^"]+)"/.exec(reset.text)![1];
  t.is((await a.get('/admin/')).status, 200);
  t.is((await b.get('/admin/')).status, 303);
  // A change made elsewhere (the CLI's `handoff user passwd`) ends the panel session too.
  const c = new AdminClient(gw.url);
  t.is((await c.login(admin.name, newPassword)).status, 303);
  await gw.gateway.accounts.setPassword(admin.name, 'changed on the command line');
  t.is((await c.get('/admin/')).status, 303);
  t.is((await a.get('/admin/')).status, 303);
});
