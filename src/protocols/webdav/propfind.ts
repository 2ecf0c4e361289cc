import type { Request } from 'express';
import { PropertyNotFoundError, type AuthResponse } from 'nephele';
import { SaxesParser } from 'saxes';
import type { LockRecord } from '../../cache/nodeMetadata.js';
import { ancestorsOf } from '../../shared/paths.js';
import { DavStatusError } from './errors.js';
import { EventResource } from './resource.js';
import type { NodeInfo } from '../../cache/FileSession.js';
import { escapeText, renderContent, renderElement } from './xmlRender.js';
import { encodeUrlPath } from '../http/paths.js';
import { SUPPORTED_LOCK } from './properties.js';

const SUPPORTED_LOCK_XML = renderElement('supportedlock', SUPPORTED_LOCK);

/**
 * allprop of a file without locks or dead properties, built at once: the same XML renderResponse
 * makes, without its per-property promises (most of a 5,000-entry listing's time went there).
 */
function plainFileAllprop(hrefPath: string, n: NodeInfo): string {
  return (
    `<D:response><D:href>${escapeText(hrefPath)}</D:href><D:propstat><D:prop>` +
    `<D:creationdate>${new Date(n.created ?? 0).toISOString()}</D:creationdate><D:getcontentlength>${n.size}</D:getcontentlength>` +
    `<D:getcontenttype>application/octet-stream</D:getcontenttype><D:getetag>"${escapeText(n.etag)}"</D:getetag>` +
    `<D:getlastmodified>${new Date(n.mtime ?? 0).toUTCString()}</D:getlastmodified><D:resourcetype/>${SUPPORTED_LOCK_XML}<D:lockdiscovery/>` +
    '</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>'
  );
}

/** Folder entries fetched, rendered and written per round. */
const PAGE = 1000;

/**
 * Our PROPFIND (Depth 0 and 1), streamed: nephele alpha.67 builds the whole multistatus in memory
 * with per-entry lookups (7 s and 300+ MB for 5,000 files with its stock adapter) and its parser
 * merges requested properties that share a local name across namespaces (litmus propget).
 */
type Request_ = { kind: 'allprop' | 'propname' | 'prop'; names: string[] };

/** nephele's key for a property: DAV: names bare, others `uri%%local`. */
const keyOf = (uri: string, local: string) => (uri === 'DAV:' ? local : `${uri}%%${local}`);

export function parsePropfind(xml: string): Request_ {
  if (xml.trim() === '') return { kind: 'allprop', names: [] };
  const p = new SaxesParser({ xmlns: true });
  const stack: string[] = [];
  const out: Request_ = { kind: 'prop', names: [] };
  let sawRoot = false;
  let mode: '' | 'allprop' | 'propname' | 'prop' = '';
  p.on('opentag', (t) => {
    const k = keyOf(t.uri ?? '', t.local ?? t.name);
    if (stack.length === 0) {
      if (k !== 'propfind') throw new DavStatusError(400, 'PROPFIND body must be a DAV:propfind element');
      sawRoot = true;
    } else if (stack.length === 1) {
      if (k === 'allprop' || k === 'propname') mode = k;
      else if (k === 'prop' && mode === '') mode = 'prop';
    } else if (stack.length === 2 && (stack[1] === 'prop' || stack[1] === 'include')) out.names.push(k);
    stack.push(k);
  });
  p.on('closetag', () => void stack.pop());
  try {
    p.write(xml).close();
  } catch (err) {
    throw err instanceof DavStatusError ? err : new DavStatusError(400, 'malformed PROPFIND body');
  }
  if (!sawRoot || mode === '') throw new DavStatusError(400, 'PROPFIND needs allprop, propname or prop');
  out.kind = mode;
  return out;
}

async function readBody(req: Request): Promise<string> {
  if (req.headers['content-length'] === '0') return '';
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function activeLock(l: LockRecord, root: string): string {
  const left = l.timeoutMs === null ? null : Math.max(0, Math.floor((l.refreshedAt + l.timeoutMs - Date.now()) / 1000));
  const owner = l.owner === null ? '' : `<D:owner>${renderContent(JSON.parse(l.owner))}</D:owner>`;
  return (
    `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${l.scope}/></D:lockscope><D:depth>${l.depth}</D:depth>${owner}` +
    `<D:timeout>${left === null ? 'Infinite' : `Second-${left}`}</D:timeout><D:locktoken><D:href>${escapeText(l.token)}</D:href></D:locktoken>` +
    `<D:lockroot><D:href>${escapeText(root)}</D:href></D:lockroot></D:activelock>`
  );
}

const live = (l: LockRecord) => !l.provisional && (l.timeoutMs === null || l.refreshedAt + l.timeoutMs > Date.now());

/** Depth-infinity locks of the folders above `resource`'s children (or above itself), with their roots. */
async function inheritedLocks(resource: EventResource, includeSelf: boolean): Promise<string[]> {
  const session = await resource.adapter.session();
  const paths = ['', ...ancestorsOf(resource.path)];
  if (includeSelf && resource.path !== '') paths.push(resource.path);
  const out: string[] = [];
  for (const p of paths) {
    const node = p === '' ? null : await session.stat(p).catch(() => null);
    if (p !== '' && !node) continue;
    const root = resource.adapter.urlOf(p, true).pathname;
    for (const l of await resource.adapter.locksOf(node?.id ?? null)) if (l.depth === 'infinity' && live(l)) out.push(activeLock(l, root));
  }
  return out;
}

async function renderResponse(r: EventResource, q: Request_, inherited: string[]): Promise<string> {
  const props = await r.getProperties();
  const url = await r.getCanonicalUrl();
  const own = r.exists ? (await r.adapter.locksOf(r.fileId)).filter(live) : [];
  const ownXml = own.filter((l) => !inherited.some((x) => x.includes(l.token))).map((l) => activeLock(l, url.pathname));
  const lockdiscovery = () => {
    const all = [...inherited, ...ownXml];
    return all.length ? `<D:lockdiscovery>${all.join('')}</D:lockdiscovery>` : '<D:lockdiscovery/>';
  };
  let ok = '';
  let missing = '';
  if (q.kind === 'propname') {
    for (const name of await props.list()) ok += renderElement(name, '');
    ok += '<D:lockdiscovery/>';
  } else if (q.kind === 'allprop') {
    for (const [name, value] of Object.entries(await props.getAll())) ok += renderElement(name, value);
    ok += lockdiscovery();
    for (const name of q.names) if (!(await props.list()).includes(name) && name !== 'lockdiscovery') missing += renderElement(name, '');
  } else {
    for (const name of q.names) {
      if (name === 'lockdiscovery') {
        ok += lockdiscovery();
        continue;
      }
      try {
        ok += renderElement(name, await props.get(name));
      } catch (err) {
        if (!(err instanceof PropertyNotFoundError)) throw err;
        missing += renderElement(name, '');
      }
    }
  }
  let xml = `<D:response><D:href>${escapeText(url.pathname)}</D:href>`;
  if (ok) xml += `<D:propstat><D:prop>${ok}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`;
  if (missing) xml += `<D:propstat><D:prop>${missing}</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>`;
  return xml + '</D:response>';
}

/** Answers the PROPFIND for `resource` (already authorised by nephele) and streams the multistatus. */
export async function propfind(request: Request, response: AuthResponse, resource: EventResource): Promise<void> {
  const q = parsePropfind(await readBody(request));
  const depth = request.get('Depth') ?? 'infinity';
  if (depth !== '0' && depth !== '1') throw new DavStatusError(400, 'Depth must be 0 or 1');
  const selfInherited = await inheritedLocks(resource, false);
  const first = await renderResponse(resource, q, selfInherited);
  response.status(207);
  response.set('Content-Type', 'application/xml; charset=utf-8');
  if ((await resource.isCollection()) && !request.originalUrl.split('?')[0].endsWith('/')) response.set('Content-Location', (await resource.getCanonicalUrl()).toString());
  const write = (s: string) => (response.write(s) ? Promise.resolve() : new Promise<void>((ok) => response.once('drain', () => ok())));
  await write(`<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">${first}`);
  if (depth === '1' && (await resource.isCollection())) {
    const childInherited = await inheritedLocks(resource, true);
    // One page of the folder at a time: memory stays bounded whatever the folder's size.
    const session = await resource.adapter.session();
    const fast = q.kind === 'allprop' && q.names.length === 0 && childInherited.length === 0;
    const base = resource.adapter.baseUrl.pathname;
    let after: string | null = null;
    for (;;) {
      const page: NodeInfo[] = await session.list(resource.path, after, PAGE);
      const children = page.map((n) => new EventResource(resource.adapter, n.path, n));
      await resource.adapter.prefetch(page);
      let batch = '';
      for (const child of children) {
        const n = child.node!;
        batch += fast && n.kind === 'file' && resource.adapter.isPlain(n.id!) ? plainFileAllprop(base + encodeUrlPath(n.path), n) : await renderResponse(child, q, childInherited);
        if (batch.length > 64 * 1024) {
          await write(batch);
          batch = '';
        }
      }
      await write(batch);
      resource.adapter.forgetMetadata();
      if (page.length < PAGE) break;
      after = page[page.length - 1].name;
    }
  }
  response.end('</D:multistatus>\n');
}
