import type { Request } from 'express';
import { SaxesParser } from 'saxes';
import { DavStatusError } from './errors.js';

/** Request bodies of these methods are XML; PUT streams untouched; others must come without a body (nephele: 415). */
const XML_METHODS = new Set(['PROPFIND', 'PROPPATCH', 'LOCK']);
const BODYLESS_METHODS = new Set(['MKCOL', 'COPY', 'MOVE', 'DELETE', 'OPTIONS', 'UNLOCK']);
export const MAX_XML_BYTES = 1024 * 1024;
const MAX_DEPTH = 32;
const MAX_ELEMENTS = 20_000;

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Scan {
  rootEnd: number;
  owner: { start: number; end: number; empty: boolean } | null;
}

/**
 * Well-formed, namespace-well-formed XML within limits, or 400: no DOCTYPE (so no entity
 * expansion of any kind), bounded depth and element count. Returns where a LOCK's owner is.
 */
function scan(xml: string): Scan {
  const p = new SaxesParser({ xmlns: true });
  let depth = 0;
  let elements = 0;
  let ownerOpen = -1;
  let ownerHasContent = false;
  const result: Scan = { rootEnd: -1, owner: null };
  p.on('doctype', () => {
    throw new DavStatusError(400, 'DOCTYPE is not allowed');
  });
  p.on('opentag', (tag) => {
    depth++;
    elements++;
    if (depth > MAX_DEPTH || elements > MAX_ELEMENTS) throw new DavStatusError(400, 'XML body too deep or too large');
    if (ownerOpen >= 0) ownerHasContent = true;
    else if (depth === 2 && tag.uri === 'DAV:' && tag.local === 'owner') {
      ownerOpen = xml.lastIndexOf('<', p.position - 1);
      ownerHasContent = false;
    }
  });
  p.on('text', (t) => {
    if (ownerOpen >= 0 && t.trim() !== '') ownerHasContent = true;
  });
  p.on('closetag', () => {
    if (depth === 2 && ownerOpen >= 0 && result.owner === null) {
      result.owner = { start: ownerOpen, end: p.position, empty: !ownerHasContent };
      ownerOpen = -1;
    }
    if (depth === 1) result.rootEnd = xml.lastIndexOf('<', p.position - 1);
    depth--;
  });
  try {
    p.write(xml).close();
  } catch (err) {
    if (err instanceof DavStatusError) throw err;
    throw new DavStatusError(400, 'malformed XML body');
  }
  return result;
}

/**
 * RFC 4918 makes a LOCK's owner optional, nephele alpha.67 refuses a missing or empty one (400),
 * which breaks davfs2's default `<D:owner/>`. We fill it with the authenticated name instead of
 * patching nephele; offered upstream.
 */
function withOwner(xml: string, s: Scan, who: string): string {
  const owner = `<owner xmlns="DAV:">${escapeXml(who)}</owner>`;
  if (s.owner && !s.owner.empty) return xml;
  if (s.owner) return xml.slice(0, s.owner.start) + owner + xml.slice(s.owner.end);
  if (s.rootEnd < 0) return xml;
  return xml.slice(0, s.rootEnd) + owner + xml.slice(s.rootEnd);
}

/**
 * Reads an XML request body (bounded), checks it and puts it back on the request for nephele
 * (`unshift` before 'end' is emitted, which Node allows). Malformed input gets 400 here instead of
 * nephele's 500, and nephele never parses an unchecked body.
 */
export function guardXmlBody(req: Request, who: string | null): Promise<void> {
  const length = req.headers['content-length'];
  // nephele reads those bodies only to refuse them; a declared huge one is refused without reading.
  if (BODYLESS_METHODS.has(req.method) && length !== undefined && Number(length) > MAX_XML_BYTES) return Promise.reject(new DavStatusError(413, 'body too large'));
  if (!XML_METHODS.has(req.method)) return Promise.resolve();
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if ((length === undefined || length === '0') && !chunked) return Promise.resolve();
  if (req.headers['content-encoding'] && req.headers['content-encoding'] !== 'identity') {
    return Promise.reject(new DavStatusError(415, 'compressed XML bodies are not accepted'));
  }
  if (length !== undefined && Number(length) > MAX_XML_BYTES) return Promise.reject(new DavStatusError(413, 'XML body too large'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = (err: Error | null) => {
      req.off('readable', onReadable);
      req.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onError = (err: Error) => done(err);
    const onReadable = () => {
      let c: Buffer | null;
      while ((c = req.read() as Buffer | null) !== null) {
        chunks.push(c);
        total += c.length;
        if (total > MAX_XML_BYTES) return done(new DavStatusError(413, 'XML body too large'));
      }
      if (!req.complete) return;
      // Synchronously, before the stream can emit 'end': the body goes back for nephele to read.
      try {
        let xml = Buffer.concat(chunks).toString('utf8');
        if (xml.trim() !== '') {
          const s = scan(xml);
          if (req.method === 'LOCK' && who) xml = withOwner(xml, s, who);
        }
        const out = Buffer.from(xml, 'utf8');
        req.headers['content-length'] = String(out.length);
        delete req.headers['transfer-encoding'];
        if (out.length > 0) req.unshift(out);
        done(null);
      } catch (err) {
        done(err as Error);
      }
    };
    req.on('readable', onReadable);
    req.on('error', onError);
  });
}
