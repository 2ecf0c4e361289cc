import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { hasChromium, launchBrowser } from '../helpers/browser.js';
import { createUpload, slowPatch } from '../helpers/tus.js';
import { packageRoot } from '../../src/shared/packageRoot.js';

let g: TestGateway;
test.before(async () => {
  g = await startTestGateway();
});
test.after.always(async () => g?.stop());

test('the recipient page shows progress moving and the state turning complete without reload', async (t) => {
  if (!hasChromium()) return t.pass('skipped: /usr/bin/chromium is not installed (Debian package chromium)');
  const alice = await g.sender('alice');
  const data = randomBytes(12 * 1024 * 1024);
  const ev = (await g.api(alice.token, 'POST', '/api/v1/events', { title: 'Live', files: [{ path: 'clip.mov', size: data.length }], recipients: [{ name: 'Viewer' }] })).body;
  const r = ev.recipients[0];
  const { browser, close } = await launchBrowser();
  try {
    const context = await browser.newContext({ httpCredentials: { username: r.username, password: r.password } });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${g.url}/e/${ev.id}/`);
    const stateText = () => page.locator('tr[data-path="clip.mov"] .state').innerText();
    t.is(await stateText(), 'waiting for upload');
    let navigations = 0;
    page.on('framenavigated', () => navigations++);
    const up = await createUpload(g.url, alice.token, ev.id, 'clip.mov', data.length);
    const seen = new Set<string>();
    const uploading = slowPatch(up.location!, alice.token, 0, data, { piece: 256 * 1024, tickMs: 40 });
    let finished = false;
    void uploading.then(() => (finished = true));
    while (!finished) {
      seen.add(await stateText());
      await page.waitForTimeout(100);
    }
    t.is(await uploading, 204);
    for (let i = 0; i < 100 && (await stateText()) !== 'ready'; i++) await page.waitForTimeout(100);
    t.is(await stateText(), 'ready');
    const percents = [...seen].filter((s) => /^uploading \d+%$/.test(s));
    t.true(percents.length >= 2, `states seen: ${[...seen].join(', ')}`);
    t.is(navigations, 0, 'no reload');
    t.deepEqual(dialogs, []);
    const artifacts = join(packageRoot(), 'test-artifacts');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'recipient-page.png'), fullPage: true });
  } finally {
    await close();
  }
});
