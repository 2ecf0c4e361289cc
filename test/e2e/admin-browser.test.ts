import test from 'ava';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { packageRoot } from '../../src/shared/packageRoot.js';
import { AdminClient } from '../helpers/adminHttp.js';
import { basic, startTestGateway, type Account, type TestGateway } from '../helpers/gateway.js';
import { hasTool } from '../helpers/tools.js';

// Browser globals for the callbacks that run inside the page (this project compiles without the DOM lib).
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;
declare const navigator: any;
type HTMLProgressElement = { value: number };

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const XSS_FILE = '<img src=x onerror=alert(1)>.txt';
const XSS_TITLE = '<script>alert("title")</script> & "quotes"';
const BIG = 'big.bin';
const CHUNK = 256 * 1024;
const CHUNKS = 8;
const ARTIFACTS = join(packageRoot(), 'test-artifacts');

const present = hasTool(CHROMIUM);
const serial = present
  ? test.serial
  : (title: string, _fn: unknown) => test(title, (t) => {
      t.log(`skipped: ${CHROMIUM} is missing; install the Debian package "chromium"`);
      t.pass();
    });

let gw: TestGateway;
let root: Account;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const dialogs: string[] = [];
const cspErrors: string[] = [];
const state: { eventId?: string; sender?: { name: string; password: string; token: string } } = {};

function watch(p: Page): void {
  p.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  p.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });
}

test.before(async () => {
  if (!present) return;
  await mkdir(ARTIFACTS, { recursive: true });
  gw = await startTestGateway({ auth: { lockout: { attempts: 3 } } });
  root = await gw.admin('root');
  // launch() runs Chromium on a fresh temporary user-data dir of its own.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.url });
  page = await context.newPage();
  watch(page);
});
test.after.always(async () => {
  await browser?.close();
  await gw?.stop();
});

async function tusCreate(token: string, eventId: string, path: string, length: number, body?: Buffer): Promise<string> {
  const res = await fetch(`${gw.url}/api/v1/events/${eventId}/uploads/`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', 'upload-length': String(length),
      'upload-metadata': `path ${Buffer.from(path).toString('base64')}`, ...(body ? { 'content-type': 'application/offset+octet-stream' } : {}),
    },
    body,
  });
  if (res.status !== 201) throw new Error(`tus create ${res.status} ${await res.text()}`);
  return res.headers.get('location')!;
}

const sessionCookie = async () => (await context.cookies(`${gw.url}/admin/`)).find((c) => c.name === 'handoff-admin')?.value;

serial('an admin signs in; the session id changes at login', async (t) => {
  await page.goto(`${gw.url}/admin/`);
  t.regex(page.url(), /\/admin\/login\?next=%2Fadmin%2F$/);
  const before = await sessionCookie();
  t.truthy(before);
  await page.fill('input[name=username]', root.name);
  await page.fill('input[name=password]', root.password);
  await Promise.all([page.waitForURL(`${gw.url}/admin/`), page.click('button[type=submit]')]);
  const after = await sessionCookie();
  t.truthy(after);
  t.not(after, before);
  t.is(await page.locator('h1').textContent(), 'Dashboard');
  t.regex((await page.locator('main').textContent()) ?? '', /No events yet/);
});

serial('create a sender, an event via the API, a recipient in the panel; the copied password downloads; revoking stops it', async (t) => {
  await page.goto(`${gw.url}/admin/users`);
  await page.fill('#add-user input[name=name]', 'sally');
  await page.selectOption('#add-user select[name=role]', 'sender');
  await page.click('#add-user button[type=submit]');
  const senderPassword = await page.inputValue('#issued-password');
  t.true(senderPassword.length >= 20);
  await page.goto(`${gw.url}/admin/users/sally`);
  await page.click('text=Issue a new token');
  const token = await page.inputValue('#issued-secret');
  t.regex(token, /^hnd_/);
  state.sender = { name: 'sally', password: senderPassword, token };

  const created = await gw.api(token, 'POST', '/api/v1/events', {
    title: XSS_TITLE,
    files: [{ path: 'report.txt', size: 12 }, { path: XSS_FILE, size: 5 }, { path: BIG, size: CHUNK * CHUNKS }],
  });
  t.is(created.status, 201);
  const eventId: string = created.body.id;
  state.eventId = eventId;
  await tusCreate(token, eventId, 'report.txt', 12, Buffer.from('hello report'));
  await tusCreate(token, eventId, XSS_FILE, 5, Buffer.from('<b>x!'));

  await page.goto(`${gw.url}/admin/events/${eventId}`);
  t.is(await page.locator('#event-title').textContent(), XSS_TITLE);
  t.is(await page.inputValue('#addr-web'), `${gw.url}/e/${eventId}/`);
  await page.fill('#add-recipient input[name=name]', 'Bob');
  await page.click('#add-recipient button[type=submit]');
  const username = await page.inputValue('#issued-username');
  await page.click('button[data-copy="issued-password"]');
  let password = await page.evaluate(() => navigator.clipboard.readText()).catch(() => '');
  if (!password) {
    t.log('clipboard not readable in this headless Chromium; using the shown value');
    password = await page.inputValue('#issued-password');
  }
  t.is(password, await page.inputValue('#issued-password'), 'the clipboard holds the shown password');

  const url = `${gw.url}/e/${eventId}/files/report.txt`;
  const ok = await fetch(url, { headers: { authorization: basic(username, password) } });
  t.is(ok.status, 200);
  t.is(await ok.text(), 'hello report');

  await page.goto(`${gw.url}/admin/events/${eventId}`);
  await page.click('tr[data-recipient="Bob"] button:has-text("Revoke")');
  await page.waitForSelector('.flash-ok');
  t.regex((await page.locator('tr[data-recipient="Bob"]').textContent()) ?? '', /revoked/);
  const refused = await fetch(url, { headers: { authorization: basic(username, password) } });
  t.is(refused.status, 401, 'the revoked recipient cannot download any more');
});

serial('the event page shows upload progress changing while a tus upload runs', async (t) => {
  const { eventId, sender } = state;
  if (!eventId || !sender) return t.fail('previous test did not create the event');
  const location = await tusCreate(sender.token, eventId, BIG, CHUNK * CHUNKS);
  await page.goto(`${gw.url}/admin/events/${eventId}`);
  await page.waitForSelector('#manifest[data-live-state="open"]');
  const row = (p: string) => `tr[data-path="${p}"]`;

  // One PATCH whose body we feed by hand: each chunk is sent only after the page showed the last one.
  let answered: (status: number) => void;
  const done = new Promise<number>((resolve) => (answered = resolve));
  const req = request(location, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${sender.token}`, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
  }, (res) => {
    res.resume();
    answered(res.statusCode ?? 0);
  });
  const labels: string[] = [];
  const values: number[] = [];
  for (let i = 1; i < CHUNKS; i++) {
    req.write(Buffer.alloc(CHUNK, i));
    await page.waitForFunction(
      ([p, min]) => {
        const tr = [...document.querySelectorAll('tr[data-path]')].find((r) => r.getAttribute('data-path') === p);
        const bar = tr?.querySelector('progress[data-field="bar"]') as HTMLProgressElement | null | undefined;
        return Boolean(bar && bar.value >= (min as number));
      },
      [BIG, i * CHUNK] as const,
    );
    values.push(await page.locator(`${row(BIG)} progress`).evaluate((el) => (el as HTMLProgressElement).value));
    labels.push((await page.locator(`${row(BIG)} [data-field="label"]`).textContent()) ?? '');
    if (i === CHUNKS / 2) {
      await page.screenshot({ path: join(ARTIFACTS, 'admin-event.png'), fullPage: true });
      const dash = await context.newPage();
      watch(dash);
      await dash.goto(`${gw.url}/admin/`);
      t.regex((await dash.locator('main').textContent()) ?? '', /big\.bin · 1\.0 MiB of 2\.0 MiB \(50%\)/);
      await dash.screenshot({ path: join(ARTIFACTS, 'admin-dashboard.png'), fullPage: true });
      await dash.close();
    }
  }
  t.is(await page.locator(`${row(BIG)} [data-field="state"]`).textContent(), 'uploading');
  req.end(Buffer.alloc(CHUNK, CHUNKS));
  t.is(await done, 204);
  await page.waitForFunction((p) => {
    const tr = [...document.querySelectorAll('tr[data-path]')].find((r) => r.getAttribute('data-path') === p);
    return tr?.querySelector('[data-field="state"]')?.textContent === 'complete';
  }, BIG);
  t.log(labels.join(' | '));
  t.true(new Set(labels).size >= CHUNKS - 1, 'a new progress label for every chunk');
  for (let i = 1; i < values.length; i++) t.true(values[i] > values[i - 1], 'progress only grows');
  t.regex(labels[0], /256\.0 KiB of 2\.0 MiB \(12%\)/);
});

serial('a file named like HTML renders as text on every page; no dialog fires', async (t) => {
  const { eventId, sender } = state;
  if (!eventId || !sender) return t.fail('no event');
  // A login attempt with an HTML username lands in the dashboard's failures and the lockout list.
  await new AdminClient(gw.url, '127.0.0.4').login('<svg onload=alert(2)>', 'wrong password 12345');
  const pages = ['/admin/', `/admin/events/${eventId}`, `/admin/events/${eventId}/log`, `/admin/events/${eventId}/log?path=${encodeURIComponent('<img')}`, '/admin/users', '/admin/lockouts'];
  for (const p of pages) {
    await page.goto(gw.url + p);
    const text = (await page.locator('main').textContent()) ?? '';
    t.is(await page.locator('img').count(), 0, `${p}: no img element`);
    t.is(await page.locator('main script, main svg').count(), 0, `${p}: no script or svg element`);
    if (p === '/admin/' || p === '/admin/lockouts') t.true(text.includes('<svg onload=alert(2)>'), `${p} shows the HTML username as text`);
    if (p !== '/admin/users' && p !== '/admin/lockouts') t.true(text.includes(p === '/admin/' ? XSS_TITLE : XSS_FILE), `${p} shows the raw name as text`);
  }
  // The recipient page, signed in as the event's owner.
  const owner = await browser.newContext({ httpCredentials: { username: sender.name, password: sender.password } });
  const rp = await owner.newPage();
  watch(rp);
  await rp.goto(`${gw.url}/e/${eventId}/`);
  t.true(((await rp.locator('main').textContent()) ?? '').includes(XSS_FILE));
  t.is(await rp.locator('img').count(), 0);
  await owner.close();
  // Narrow screen: the event page still fits (tables turn into stacked rows).
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto(`${gw.url}/admin/events/${eventId}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  t.true(overflow <= 1, `no horizontal scrolling at 375 px (overflow ${overflow})`);
  await page.screenshot({ path: join(ARTIFACTS, 'admin-event-narrow.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  t.deepEqual(dialogs, [], 'no dialog fired on any page');
  t.deepEqual(cspErrors, [], 'no CSP violation reported');
});

serial('the panel works with JavaScript turned off', async (t) => {
  const { eventId } = state;
  if (!eventId) return t.fail('no event');
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  const p = await noJs.newPage();
  watch(p);
  await p.goto(`${gw.url}/admin/events/${eventId}`);
  await p.fill('input[name=username]', root.name);
  await p.fill('input[name=password]', root.password);
  await Promise.all([p.waitForURL(`${gw.url}/admin/events/${eventId}`), p.click('button[type=submit]')]);
  await p.click('summary:has-text("Add a recipient")');
  await p.fill('#add-recipient input[name=name]', 'Carol');
  await p.click('#add-recipient button[type=submit]');
  t.regex(await p.inputValue('#issued-password'), /^[A-Za-z0-9]{22}$/);
  await p.goto(`${gw.url}/admin/events/${eventId}/log?action=upload`);
  t.is(await p.locator('#log tbody tr').count(), 3);
  await noJs.close();
});

serial('a locked-out login shows a clear message', async (t) => {
  const locky = await gw.admin('locky');
  // A guesser elsewhere is banned by address, even with the right password.
  const attacker = new AdminClient(gw.url, '127.0.0.2');
  for (let i = 0; i < 3; i++) t.is((await attacker.login('locky', `wrong-guess-${i}-padding`)).status, 401);
  t.is((await attacker.login('locky', locky.password)).status, 429, 'banned even with the right password');

  // In the browser: mistype until locked out, then the right password shows the lockout message.
  const fresh = await browser.newContext();
  const p = await fresh.newPage();
  watch(p);
  const attempt = async (password: string) => {
    await p.goto(`${gw.url}/admin/login`);
    await p.fill('input[name=username]', 'locky');
    await p.fill('input[name=password]', password);
    await p.click('button[type=submit]');
    return (await p.locator('#login-error').textContent()) ?? '';
  };
  for (let i = 0; i < 3; i++) t.notRegex(await attempt(`typo-${i}-padding-long`), /Too many/);
  const message = await attempt(locky.password);
  t.regex(message, /Too many failed sign-in attempts/);
  t.regex(message, /locked/);
  t.regex(p.url(), /\/admin\/login$/);
  await fresh.close();

  // The lockout list shows the bans (by name and by address); clearing them lets locky in.
  await page.goto(`${gw.url}/admin/lockouts`);
  const list = (await page.locator('#lockouts').textContent()) ?? '';
  t.true(list.includes('user:locky'));
  t.true(list.includes('ip:127.0.0.1'));
  await page.click('button:has-text("Clear all")');
  await page.waitForSelector('.flash-ok');
  const again = new AdminClient(gw.url);
  t.is((await again.login('locky', locky.password)).status, 303);
});
