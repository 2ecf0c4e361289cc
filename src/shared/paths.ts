import { GatewayError } from './errors.js';

/**
 * The one canonicaliser for every protocol. Input is an already-decoded path relative to an event
 * root (protocols decode their own transport encoding exactly once). Output is the canonical
 * relative path ('' for the root): NFC, '/'-separated, no empty, '.' or '..' segments.
 *
 * We refuse rather than resolve: '..' segments, control bytes, backslashes and characters that
 * compatibility-normalise to a separator or dot segment are rejected, so no later layer (NFKC
 * in a client, a Windows share) can synthesise a traversal after validation.
 */
export const MAX_SEGMENT_BYTES = 255;
export const MAX_PATH_BYTES = 4096;

const CONTROL = /[\u0000-\u001f\u007f]/;

export function canonicalPath(input: string): string {
  if (typeof input !== 'string') throw new GatewayError('bad_request', 'path must be a string');
  if (CONTROL.test(input)) throw new GatewayError('bad_request', 'path contains control characters');
  if (input.includes('\\')) throw new GatewayError('bad_request', 'path contains a backslash');
  const nfc = input.normalize('NFC');
  if (Buffer.byteLength(nfc) > MAX_PATH_BYTES) throw new GatewayError('bad_request', 'path too long');
  const out: string[] = [];
  for (const segment of nfc.split('/')) {
    if (segment === '' || segment === '.') continue;
    checkSegment(segment);
    out.push(segment);
  }
  return out.join('/');
}

export function checkSegment(segment: string): void {
  if (segment === '..') throw new GatewayError('bad_request', 'path may not contain ".."');
  if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) throw new GatewayError('bad_request', 'path segment too long');
  const compat = segment.normalize('NFKC');
  if (compat === '.' || compat === '..' || /[\\/]/.test(compat) || compat.includes('\u2215') || /^\.{2,}$/.test(compat)) {
    throw new GatewayError('bad_request', 'path segment is not allowed');
  }
}

/** Parent of a canonical path ('' for top-level entries). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

/** Every ancestor directory of a canonical path, outermost first ('a/b/c' → ['a', 'a/b']). */
export function ancestorsOf(path: string): string[] {
  const parts = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/** Segment-wise containment: is `path` equal to or below `dir`? Never a string-prefix test. */
export function isWithin(dir: string, path: string): boolean {
  if (dir === '') return true;
  const d = dir.split('/');
  const p = path.split('/');
  if (p.length < d.length) return false;
  return d.every((seg, i) => p[i] === seg);
}

/** Lexical resolution for SFTP REALPATH-style inputs: '..' is clamped at the root, never above it. */
export function resolveLexical(input: string): string {
  const out: string[] = [];
  for (const segment of input.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      out.pop();
      continue;
    }
    out.push(segment);
  }
  return canonicalPath(out.join('/'));
}
