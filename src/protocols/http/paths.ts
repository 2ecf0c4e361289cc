import { GatewayError } from '../../shared/errors.js';

/**
 * Decodes a raw URL path (after the route prefix) exactly once, segment by segment. An encoded
 * slash inside a segment is refused rather than turned into a separator; the result then goes
 * through the one canonicaliser in FileSession.
 */
export function decodeUrlPath(raw: string): string {
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  return path
    .split('/')
    .map((seg) => {
      let s: string;
      try {
        s = decodeURIComponent(seg);
      } catch {
        throw new GatewayError('bad_request', 'malformed percent-encoding in path');
      }
      if (s.includes('/')) throw new GatewayError('bad_request', 'encoded slash in path');
      return s;
    })
    .join('/');
}

/** Encodes a canonical path for a URL, segment by segment. */
export function encodeUrlPath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The part of the request URL after `prefix` (both raw, still encoded). */
export function rawSuffix(originalUrl: string, prefix: string): string {
  const q = originalUrl.indexOf('?');
  const path = q < 0 ? originalUrl : originalUrl.slice(0, q);
  return path.startsWith(prefix) ? path.slice(prefix.length) : '';
}
