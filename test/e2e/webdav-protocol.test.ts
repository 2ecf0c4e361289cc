import test from 'ava';
import { request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { basic, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { dav, davEvent, hrefs, LOCK_BODY, PROPFIND_ALL, type DavEvent } from '../helpers/dav.js';
import { youngCollections } from '../../src/shared/youngGc.js';
import { quickPuts } from '../../src/protocols/webdav/quickPut.js';

/** The nephele gaps the issue lists, client quirks, and locks shared between gateway nodes. */
let gw: TestGateway;
let ev: DavEvent;
let own: [string, string];
let rec: [string, string];
const XML = { 'content-type': 'application/xml' };

test.before(async () => {
  gw = await startTestGateway({ events: { quotaSlack: 256 * 1024 * 1024 } });
  const owner = await gw.sender();
  ev = await davEvent(gw, owner, ['bob']);
  own = [owner.name, owner.password];
  rec = [ev.recipients[0].username, ev.recipients[0].password];
});

test.after.always(async () => {
  await gw?.stop();
});

test.serial('LOCK without an owner, or with an empty one, is accepted (davfs2 default)', async (t) => {
  for (const [name, owner] of [['no-owner.txt', ''], ['empty-owner.txt', '<D:owner/>'], ['blank-owner.txt', '<D:owner> </D:owner>']]) {
    const r = await dav('LOCK', ev.url + name, own, { body: LOCK_BODY(owner), headers: XML });
    t.is(r.status, 201, name);
    t.regex(r.headers.get('lock-token') ?? '', /^<urn:uuid:/);
  }
});

test.serial('malformed or unsafe XML bodies get 400, never 500', async (t) => {
  const bodies = [
    '<D:propfind xmlns:D="DAV:"><D:prop>',
    '<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>',
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><D:propfind xmlns:D="DAV:"><D:prop>&lol2;</D:prop></D:propfind>',
    `<D:propfind xmlns:D="DAV:">${'<a>'.repeat(100)}${'</a>'.repeat(100)}</D:propfind>`,
  ];
  for (const body of bodies) {
    const r = await dav('PROPFIND', ev.url, own, { body, headers: { ...XML, depth: '0' } });
    t.is(r.status, 400, body.slice(0, 40));
    t.notRegex(r.body, /at .*\.js|node_modules|stack/i);
  }
  t.is((await dav('PROPPATCH', ev.url, own, { body: '<D:propertyupdate xmlns:D="DAV:"><D:set>', headers: XML })).status, 400);
  t.is((await dav('LOCK', ev.url + 'bad-lock.txt', own, { body: '<D:lockinfo', headers: XML })).status, 400);
  t.is((await dav('PROPFIND', ev.url, own, { body: 'x'.repeat(2 * 1024 * 1024), headers: { ...XML, depth: '0' } })).status, 413);
});

test.serial('PROPFIND with Depth infinity or no Depth is 403 propfind-finite-depth', async (t) => {
  for (const headers of [{ depth: 'infinity' }, {} as Record<string, string>]) {
    const r = await dav('PROPFIND', ev.url, own, { headers });
    t.is(r.status, 403);
    t.regex(r.body, /<D:propfind-finite-depth\/>/);
  }
});

test.serial('UNLOCK with a token that matches no lock is 409, not 207', async (t) => {
  await dav('PUT', ev.url + 'unlock.txt', own, { body: 'u' });
  const r = await dav('UNLOCK', ev.url + 'unlock.txt', own, { headers: { 'lock-token': '<urn:uuid:00000000-0000-4000-8000-000000000000>' } });
  t.is(r.status, 409);
  t.regex(r.body, /lock-token-matches-request-uri/);
});

test.serial('COPY and MOVE with Overwrite: F onto an existing resource are a top-level 412', async (t) => {
  await dav('PUT', ev.url + 'ow-a.txt', own, { body: 'a' });
  await dav('PUT', ev.url + 'ow-b.txt', own, { body: 'b' });
  for (const m of ['COPY', 'MOVE']) {
    const r = await dav(m, ev.url + 'ow-a.txt', own, { headers: { destination: ev.url + 'ow-b.txt', overwrite: 'F' } });
    t.is(r.status, 412, m);
  }
  t.is((await dav('GET', ev.url + 'ow-b.txt', own)).body, 'b');
  t.is((await dav('GET', ev.url + 'ow-a.txt', own)).body, 'a');
});

test.serial('COPY or MOVE to another event is refused and writes nothing there', async (t) => {
  const other = await davEvent(gw, (await gw.sender()), []);
  await dav('PUT', ev.url + 'cross.txt', own, { body: 'c' });
  t.is((await dav('COPY', ev.url + 'cross.txt', own, { headers: { destination: other.url + 'cross.txt' } })).status, 403);
  t.is((await dav('MOVE', ev.url + 'cross.txt', own, { headers: { destination: other.url + 'cross.txt' } })).status, 403);
  t.is((await dav('GET', ev.url + 'cross.txt', own)).body, 'c');
});

test.serial('an aborted PUT over a file leaves the previous content intact', async (t) => {
  await dav('PUT', ev.url + 'keep.bin', own, { body: 'original' });
  await new Promise<void>((resolve) => {
    const u = new URL(ev.url + 'keep.bin');
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { authorization: 'Basic ' + Buffer.from(own.join(':')).toString('base64'), 'content-length': String(64 * 1024 * 1024) } });
    req.on('error', () => resolve());
    req.write(Buffer.alloc(1024 * 1024, 1), () => setTimeout(() => req.destroy(), 100));
    req.on('close', () => resolve());
  });
  await new Promise((r) => setTimeout(r, 300));
  t.is((await dav('GET', ev.url + 'keep.bin', own)).body, 'original');
});

test.serial('PUT streams into the event: complete in the manifest, logged, readable over HTTP', async (t) => {
  const body = Buffer.alloc(3 * 1024 * 1024 + 7, 'q');
  t.is((await dav('PUT', ev.url + 'f%C3%B6lder%20x', own)).status, 201);
  t.is((await dav('DELETE', ev.url + 'f%C3%B6lder%20x', own)).status, 204);
  t.is((await dav('MKCOL', ev.url + 'f%C3%B6lder%20%23x/', own)).status, 201);
  t.is((await dav('PUT', ev.url + 'f%C3%B6lder%20%23x/gr%C3%BC%C3%9Fe.bin', own, { body })).status, 201);
  const api = await gw.api(ev.owner.token, 'GET', `/api/v1/events/${ev.id}`);
  const f = api.body.files.find((x: { path: string }) => x.path === 'földer #x/grüße.bin');
  t.is(f?.state, 'complete');
  t.is(f?.size, body.length);
  const log = await gw.api(ev.owner.token, 'GET', `/api/v1/events/${ev.id}/log`);
  t.true((log.body.entries ?? log.body).some((e: { protocol: string; action: string; path: string }) => e.protocol === 'webdav' && e.action === 'upload' && e.path === 'földer #x/grüße.bin'));
  const list = await dav('PROPFIND', ev.url + 'f%C3%B6lder%20%23x/', own, { headers: { depth: '1' } });
  t.true(hrefs(list.body).some((h) => h.endsWith('/földer #x/grüße.bin')));
  const range = await dav('GET', ev.url + 'f%C3%B6lder%20%23x/gr%C3%BC%C3%9Fe.bin', rec, { headers: { range: 'bytes=10-19' } });
  t.is(range.status, 206);
  t.is(range.body, 'q'.repeat(10));
  t.is((await dav('GET', ev.url + 'f%C3%B6lder%20%23x/gr%C3%BC%C3%9Fe.bin', rec)).body.length, body.length);
  await new Promise((r) => setTimeout(r, 400));
  const after = await gw.api(ev.owner.token, 'GET', `/api/v1/events/${ev.id}/log`);
  t.true(after.body.entries.some((e: { protocol: string; action: string; who: string }) => e.protocol === 'webdav' && e.action === 'download' && e.who === rec[0]));
  const quota = await dav('PROPFIND', ev.url, own, {
    headers: { depth: '0' }, body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>',
  });
  t.regex(quota.body, /<D:quota-used-bytes>\d+<\/D:quota-used-bytes>/);
  t.regex(quota.body, /<D:quota-available-bytes>\d+<\/D:quota-available-bytes>/);
});

test.serial('modification time from X-OC-Mtime and from Windows Win32LastModifiedTime', async (t) => {
  const r = await dav('PUT', ev.url + 'mtime.txt', own, { body: 'm', headers: { 'x-oc-mtime': '1600000000' } });
  t.is(r.headers.get('x-oc-mtime'), 'accepted');
  const lastModified = async () => /<D:getlastmodified>([^<]+)</.exec((await dav('PROPFIND', ev.url + 'mtime.txt', own, { headers: { depth: '0' } })).body)?.[1];
  t.is(await lastModified(), new Date(1600000000 * 1000).toUTCString());
  const patch = '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>' +
    '<Z:Win32LastModifiedTime>Wed, 02 Jan 2019 03:04:05 GMT</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>';
  const p = await dav('PROPPATCH', ev.url + 'mtime.txt', own, { body: patch, headers: XML });
  t.is(p.status, 207);
  t.regex(p.body, /200 OK/);
  t.is(await lastModified(), 'Wed, 02 Jan 2019 03:04:05 GMT');
});

test.serial('macOS ._* and .DS_Store files: accepted from the owner, hidden from recipients', async (t) => {
  t.is((await dav('PUT', ev.url + '.DS_Store', own, { body: 'ds' })).status, 201);
  t.is((await dav('PUT', ev.url + '._photo.jpg', own, { body: 'ad' })).status, 201);
  const mine = hrefs((await dav('PROPFIND', ev.url, own, { headers: { depth: '1' } })).body);
  const theirs = hrefs((await dav('PROPFIND', ev.url, rec, { headers: { depth: '1' } })).body);
  t.true(mine.some((h) => h.endsWith('/.DS_Store')) && mine.some((h) => h.endsWith('/._photo.jpg')));
  t.false(theirs.some((h) => h.endsWith('/.DS_Store') || h.endsWith('/._photo.jpg')));
  t.is((await dav('GET', ev.url + '.DS_Store', rec)).status, 404);
});

test.serial('the mount point lists no event: 401 without credentials, an empty folder with them', async (t) => {
  const root = `${gw.url}/dav/`;
  t.is((await dav('OPTIONS', root, null)).status, 200);
  t.is((await dav('PROPFIND', root, null, { headers: { depth: '1' } })).status, 401);
  t.is((await dav('PROPFIND', root, [own[0], 'wrong'], { headers: { depth: '1' } })).status, 401);
  const r = await dav('PROPFIND', root, rec, { headers: { depth: '1' } });
  t.is(r.status, 207);
  t.deepEqual(hrefs(r.body), ['/dav/']);
  t.is((await dav('DELETE', root, own)).status, 404);
  // Any name below it is an event id: one that is not the caller's is 403, existing or not.
  t.is((await dav('PUT', root + 'x', own, { body: 'x' })).status, 403);
});

test.serial('OPTIONS advertises class 2 and MS-Author-Via; errors carry no stack traces', async (t) => {
  const o = await dav('OPTIONS', ev.url, null);
  t.regex(o.headers.get('dav') ?? '', /\b1\b.*\b2\b/);
  t.is(o.headers.get('ms-author-via'), 'DAV');
  const e = await dav('GET', ev.url + 'missing/file', own);
  t.is(e.status, 404);
  t.notRegex(e.body, /stack|\.js:|node_modules|\/work\//);
});

test.serial('a lock taken through one gateway node holds on another node sharing the database', async (t) => {
  await dav('PUT', ev.url + 'shared-lock.txt', own, { body: 'v1' });
  const l = await dav('LOCK', ev.url + 'shared-lock.txt', own, { body: LOCK_BODY(), headers: { ...XML, timeout: 'Second-600' } });
  t.is(l.status, 200);
  const token = l.headers.get('lock-token')!;
  const second = await startTestGateway({}, { dataDir: gw.dataDir });
  try {
    const url2 = ev.url.replace(gw.url, second.url);
    t.is((await dav('PUT', url2 + 'shared-lock.txt', own, { body: 'v2' })).status, 423);
    t.regex((await dav('PROPFIND', url2 + 'shared-lock.txt', own, { headers: { depth: '0' } })).body, new RegExp(token.slice(1, -1)));
    t.is((await dav('PUT', url2 + 'shared-lock.txt', own, { body: 'v2', headers: { if: `(${token})` } })).status, 204);
    t.is((await dav('UNLOCK', url2 + 'shared-lock.txt', own, { headers: { 'lock-token': token } })).status, 204);
    t.is((await dav('PUT', ev.url + 'shared-lock.txt', own, { body: 'v3' })).status, 204);
  } finally {
    await second.gateway.stop(500);
  }
});

test.serial('requests that crashed other WebDAV servers are answered and the server keeps serving', async (t) => {
  await dav('PUT', ev.url + 'crash.txt', own, { body: 'c' });
  const l = await dav('LOCK', ev.url + 'crash.txt', own, { body: LOCK_BODY(), headers: XML });
  const token = l.headers.get('lock-token')!;
  // Windows' untagged If on a locked file, a Not-no-lock list, and garbage.
  t.is((await dav('PUT', ev.url + 'crash.txt', own, { body: 'w', headers: { if: `(${token})` } })).status, 204);
  t.is((await dav('PUT', ev.url + 'crash.txt', own, { body: 'x', headers: { if: '(<urn:uuid:x>) (Not <DAV:no-lock>)' } })).status, 423, 'condition holds, but the lock token was not submitted');
  t.is((await dav('UNLOCK', ev.url + 'crash.txt', own, { headers: { 'lock-token': token } })).status, 204);
  t.is((await dav('PUT', ev.url + 'crash.txt', own, { body: 'y', headers: { if: '((((garbage' } })).status, 400);
  const multi = '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x">' +
    '<D:set><D:prop><x:a>1</x:a></D:prop></D:set><D:remove><D:prop><x:b/></D:prop></D:remove><D:set><D:prop><x:c>3</x:c></D:prop></D:set></D:propertyupdate>';
  t.is((await dav('PROPPATCH', ev.url + 'crash.txt', own, { body: multi, headers: XML })).status, 207);
  t.is((await dav('PROPFIND', ev.url + 'crash.txt', own, { headers: { depth: '0' } })).status, 207);
  t.is((await dav('MOVE', ev.url + 'crash.txt', own, { headers: { destination: ev.url + 'crash.txt' } })).status, 403);
  t.is((await dav('GET', ev.url + '%2e%2e/%2e%2e/etc/passwd', own)).status < 500, true);
  for (const bad of ['%ZZ', 'a%2Fb', '%00x', 'x%5Cy']) t.is((await dav('PROPFIND', ev.url + bad, own, { headers: { depth: '0' } })).status, 400, bad);
  t.is((await dav('GET', ev.url + 'crash.txt', own)).body, 'w');
});

test.serial('a Depth:1 PROPFIND pages through big folders and lists every entry once', async (t) => {
  t.is((await dav('MKCOL', ev.url + 'big/', own)).status, 201);
  const names = Array.from({ length: 1005 }, (_, i) => `d${String(i).padStart(4, '0')}`);
  for (let i = 0; i < names.length; i += 8) {
    await Promise.all(names.slice(i, i + 8).map((n) => dav('MKCOL', ev.url + `big/${n}/`, own)));
  }
  const listed = hrefs((await dav('PROPFIND', ev.url + 'big/', own, { headers: { depth: '1' } })).body);
  t.is(listed.length, 1006);
  t.is(new Set(listed).size, 1006);
  t.true(listed.includes(new URL(ev.url).pathname + 'big/d1004/'));
});

test.serial('a listed file is described exactly as a PROPFIND of the file itself describes it', async (t) => {
  // Plain files in a Depth:1 listing take a shortcut; files with locks or dead properties do not.
  t.is((await dav('MKCOL', ev.url + 'same/', own)).status, 201);
  for (const name of ['plain.txt', 'ünï & <odd>.txt', 'with-prop.txt']) {
    t.is((await dav('PUT', ev.url + 'same/' + encodeURIComponent(name), own, { body: `content of ${name}` })).status, 201);
  }
  const patch = '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>';
  t.is((await dav('PROPPATCH', ev.url + 'same/with-prop.txt', own, { body: patch, headers: XML })).status, 207);
  const entry = (body: string, name: string) => {
    const hrefOf = (x: string) => decodeURIComponent(/<D:href>([^<]*)</.exec(x)![1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
    const m = [...body.matchAll(/<D:response>.*?<\/D:response>/gs)].map((x) => x[0]).find((x) => hrefOf(x).endsWith('/' + name));
    if (!m) throw new Error(`no entry for ${name} in ${body.slice(0, 300)}`);
    return m;
  };
  for (const body of ['', PROPFIND_ALL]) {
    const listing = (await dav('PROPFIND', ev.url + 'same/', own, { headers: { depth: '1', ...(body ? XML : {}) }, body: body || undefined })).body;
    for (const name of ['plain.txt', 'ünï & <odd>.txt', 'with-prop.txt']) {
      const self = (await dav('PROPFIND', ev.url + 'same/' + encodeURIComponent(name), own, { headers: { depth: '0', ...(body ? XML : {}) }, body: body || undefined })).body;
      t.is(entry(listing, name), entry(self, name), name);
    }
    t.regex(entry(listing, 'with-prop.txt'), /<color xmlns="urn:x-test:"[^>]*>blue<\/color>/);
  }
});

test.serial('a PUT into a file announced with a sha256 is checked: other bytes are refused (422) and the file turns failed, the right bytes complete it', async (t) => {
  const good = Buffer.alloc(300_000, 'a');
  const bad = Buffer.alloc(300_000, 'b');
  const announced = await davEvent(gw, ev.owner, [], [{ path: 'checked.bin', size: good.length, sha256: createHash('sha256').update(good).digest('hex') }]);
  const state = async () => (await gw.api(ev.owner.token, 'GET', `/api/v1/events/${announced.id}`)).body.files.find((f: { path: string }) => f.path === 'checked.bin');
  t.is((await dav('PUT', announced.url + 'checked.bin', own, { body: bad })).status, 422);
  t.is((await state()).state, 'failed');
  t.is((await dav('GET', announced.url + 'checked.bin', own)).status, 404);
  // 204: the announced name exists before its bytes do.
  t.is((await dav('PUT', announced.url + 'checked.bin', own, { body: good })).status, 204);
  const done = await state();
  t.is(done.state, 'complete');
  t.is(done.sha256, createHash('sha256').update(good).digest('hex'));
  const got = await fetch(announced.url + 'checked.bin', { headers: { authorization: basic(own[0], own[1]) } });
  t.true(Buffer.from(await got.arrayBuffer()).equals(good));
});

test.serial('a large PUT body has its young generation collected as it goes (youngGc), and arrives intact', async (t) => {
  // Node's parser hands the body over in fresh buffers; without these collections V8 could fall into back-to-back full ones.
  const body = randomBytes(24 * 1024 * 1024);
  const before = youngCollections();
  t.is((await dav('PUT', ev.url + 'young-gc.bin', own, { body })).status, 201);
  t.true(youngCollections() - before >= 2, `young-generation collections during the PUT: ${youngCollections() - before}`);
  const got = await fetch(ev.url + 'young-gc.bin', { headers: { authorization: basic(own[0], own[1]) } });
  t.true(Buffer.from(await got.arrayBuffer()).equals(body));
});

test.serial('plain PUTs are answered in front of nephele with its answers; with a lock in the event, or conditional headers, nephele answers', async (t) => {
  const e = await davEvent(gw, ev.owner, ['carol']);
  const base = e.url;
  const before = quickPuts();
  const created = await dav('PUT', base + 'quick%20one.txt', own, { body: 'one' });
  t.is(created.status, 201);
  t.is(created.headers.get('location'), base + 'quick%20one.txt');
  t.is(created.headers.get('cache-control'), 'private, no-cache');
  t.is((await dav('PUT', base + 'quick%20one.txt', own, { body: 'one again' })).status, 204);
  t.is(quickPuts() - before, 2);
  t.is((await dav('GET', base + 'quick%20one.txt', own)).body, 'one again');

  // Refusals and everything conditional are nephele's, before a byte is read.
  t.is((await dav('PUT', base + 'missing/folder.txt', own, { body: 'x' })).status, 409);
  t.is((await dav('PUT', base + 'quick%20one.txt', [e.recipients[0].username, e.recipients[0].password], { body: 'x' })).status, 403);
  t.is((await dav('PUT', base + 'quick%20one.txt', [own[0], 'wrong password'], { body: 'x' })).status, 401);
  t.is((await dav('PUT', base + 'quick%20one.txt', own, { body: 'x', headers: { 'if-match': '"nope"' } })).status, 412);
  t.is(quickPuts() - before, 2);

  const lock = await dav('LOCK', base + 'quick%20one.txt', own, { body: LOCK_BODY(), headers: XML });
  t.is(lock.status, 200);
  t.is((await dav('PUT', base + 'quick%20one.txt', own, { body: 'no token' })).status, 423);
  t.is((await dav('PUT', base + 'other.txt', own, { body: 'beside the lock' })).status, 201);
  t.is(quickPuts() - before, 2, 'with a lock in the event every PUT goes to nephele');
  t.is((await dav('UNLOCK', base + 'quick%20one.txt', own, { headers: { 'lock-token': lock.headers.get('lock-token')! } })).status, 204);
  t.is((await dav('GET', base + 'quick%20one.txt', own)).body, 'one again');
  t.is((await dav('PUT', base + 'quick%20one.txt', own, { body: 'after unlock' })).status, 204);
  t.is(quickPuts() - before, 3);
});
