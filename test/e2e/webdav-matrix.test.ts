import test from 'ava';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { dav, davEvent, hrefs, LOCK_BODY, type DavEvent } from '../helpers/dav.js';

/**
 * Method × credential: every method gets exactly the expected status for each kind of caller,
 * and a refused request creates, changes or removes nothing.
 */
let gw: TestGateway;
let ev: DavEvent;
let creds: Record<string, [string, string] | null>;
let lockedToken = '';

const WHO = ['none', 'wrong', 'other', 'revoked', 'recipient', 'owner'] as const;
type Who = (typeof WHO)[number];

test.before(async () => {
  gw = await startTestGateway({ auth: { lockout: { attempts: 100000, windowSeconds: 900 } } });
  const owner = await gw.sender();
  const stranger = await gw.sender();
  ev = await davEvent(gw, owner, ['bob', 'eve']);
  const other = await davEvent(gw, stranger, ['dave']);
  await gw.api(owner.token, 'DELETE', `/api/v1/events/${ev.id}/recipients/eve`);
  const [bob, eve] = ev.recipients;
  creds = {
    none: null,
    wrong: [owner.name, 'not-the-password'],
    other: [other.recipients[0].username, other.recipients[0].password],
    revoked: [eve.username, eve.password],
    recipient: [bob.username, bob.password],
    owner: [owner.name, owner.password],
  };
  const own = creds.owner;
  for (const p of ['seed.txt', 'locked.txt', ...WHO.flatMap((w) => [`del-${w}.txt`, `mv-${w}.txt`, `lock-${w}.txt`])]) {
    const r = await dav('PUT', ev.url + p, own, { body: `content of ${p}` });
    if (r.status !== 201) throw new Error(`seed ${p}: ${r.status}`);
  }
  const l = await dav('LOCK', ev.url + 'locked.txt', own, { body: LOCK_BODY(), headers: { 'content-type': 'application/xml', timeout: 'Second-3600' } });
  lockedToken = (l.headers.get('lock-token') ?? '').replace(/[<>]/g, '');
});

test.after.always(async () => {
  await gw?.stop();
});

const DENY_ANON = { none: 401, wrong: 401, revoked: 401, other: 403 } as const;
const READ = { ...DENY_ANON, recipient: 0, owner: 0 };
const WRITE = { ...DENY_ANON, recipient: 403, owner: 0 };

interface Case {
  method: string;
  expect: Record<Who, number>;
  run: (who: Who) => Promise<number>;
}

const prop = '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:color xmlns:x="urn:test">red</x:color></D:prop></D:set></D:propertyupdate>';

const CASES: Case[] = [
  { method: 'OPTIONS', expect: { none: 200, wrong: 200, other: 200, revoked: 200, recipient: 200, owner: 200 }, run: async (w) => (await dav('OPTIONS', ev.url, creds[w])).status },
  { method: 'PROPFIND d0', expect: { ...READ, recipient: 207, owner: 207 }, run: async (w) => (await dav('PROPFIND', ev.url, creds[w], { headers: { depth: '0' } })).status },
  { method: 'PROPFIND d1', expect: { ...READ, recipient: 207, owner: 207 }, run: async (w) => (await dav('PROPFIND', ev.url, creds[w], { headers: { depth: '1' } })).status },
  {
    method: 'PROPPATCH', expect: { ...WRITE, owner: 207 },
    run: async (w) => (await dav('PROPPATCH', ev.url + 'seed.txt', creds[w], { body: prop.replace('red', w), headers: { 'content-type': 'application/xml' } })).status,
  },
  { method: 'MKCOL', expect: { ...WRITE, owner: 201 }, run: async (w) => (await dav('MKCOL', ev.url + `new-${w}/`, creds[w])).status },
  { method: 'GET', expect: { ...READ, recipient: 200, owner: 200 }, run: async (w) => (await dav('GET', ev.url + 'seed.txt', creds[w])).status },
  { method: 'HEAD', expect: { ...READ, recipient: 200, owner: 200 }, run: async (w) => (await dav('HEAD', ev.url + 'seed.txt', creds[w])).status },
  { method: 'PUT', expect: { ...WRITE, owner: 201 }, run: async (w) => (await dav('PUT', ev.url + `put-${w}.txt`, creds[w], { body: 'x' })).status },
  { method: 'DELETE', expect: { ...WRITE, owner: 204 }, run: async (w) => (await dav('DELETE', ev.url + `del-${w}.txt`, creds[w])).status },
  {
    method: 'COPY', expect: { ...WRITE, owner: 201 },
    run: async (w) => (await dav('COPY', ev.url + 'seed.txt', creds[w], { headers: { destination: ev.url + `copy-${w}.txt` } })).status,
  },
  {
    method: 'MOVE', expect: { ...WRITE, owner: 201 },
    run: async (w) => (await dav('MOVE', ev.url + `mv-${w}.txt`, creds[w], { headers: { destination: ev.url + `moved-${w}.txt` } })).status,
  },
  {
    method: 'LOCK', expect: { ...WRITE, owner: 200 },
    run: async (w) => (await dav('LOCK', ev.url + `lock-${w}.txt`, creds[w], { body: LOCK_BODY(), headers: { 'content-type': 'application/xml' } })).status,
  },
  {
    method: 'UNLOCK', expect: { ...WRITE, owner: 204 },
    // Everyone tries the owner's real token; only the owner (the lock's creator) may use it.
    run: async (w) => (await dav('UNLOCK', ev.url + 'locked.txt', creds[w], { headers: { 'lock-token': `<${lockedToken}>` } })).status,
  },
];

test.serial('every method answers each caller exactly as expected', async (t) => {
  const got: string[] = [];
  const want: string[] = [];
  // Refused callers first, so the owner's successes (UNLOCK) do not change what they see.
  for (const c of CASES) {
    for (const w of WHO) {
      got.push(`${c.method} ${w} ${await c.run(w)}`);
      want.push(`${c.method} ${w} ${c.expect[w]}`);
    }
  }
  t.deepEqual(got, want);
});

test.serial('refused requests created, moved, removed and locked nothing', async (t) => {
  const own = creds.owner;
  const listing = hrefs((await dav('PROPFIND', ev.url, own, { headers: { depth: '1' } })).body).map((h) => h.split('/').filter(Boolean).pop()!);
  for (const w of WHO) {
    const ownerOnly = w === 'owner';
    t.is(listing.includes(`new-${w}`), ownerOnly, `new-${w}`);
    t.is(listing.includes(`put-${w}.txt`), ownerOnly, `put-${w}`);
    t.is(listing.includes(`copy-${w}.txt`), ownerOnly, `copy-${w}`);
    t.is(listing.includes(`moved-${w}.txt`), ownerOnly, `moved-${w}`);
    t.is(listing.includes(`mv-${w}.txt`), !ownerOnly, `mv-${w}`);
    t.is(listing.includes(`del-${w}.txt`), !ownerOnly, `del-${w}`);
    if (!ownerOnly) {
      // Not locked: the owner can overwrite without a token.
      t.is((await dav('PUT', ev.url + `lock-${w}.txt`, own, { body: 'y' })).status, 204, `lock-${w}`);
    }
  }
  const props = await dav('PROPFIND', ev.url + 'seed.txt', own, {
    headers: { depth: '0' }, body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><x:color xmlns:x="urn:test"/></D:prop></D:propfind>',
  });
  t.regex(props.body, />owner</, 'only the owner set the property');
  t.is((await dav('GET', ev.url + 'seed.txt', own)).body, 'content of seed.txt');
});
