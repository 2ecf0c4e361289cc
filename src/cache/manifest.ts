import type { FileRow, FileState } from '../db/repos/rows.js';
import { GatewayError } from '../shared/errors.js';
import { baseName, canonicalPath } from '../shared/paths.js';
import type { Principal } from '../auth/principal.js';

export interface ManifestEntry {
  path: string;
  size: number;
  sha256?: string | null;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Validates announced files: canonical, unique, no file announced where another needs a folder. */
export function validateManifest(entries: ManifestEntry[], maxFiles: number): Array<{ path: string; size: number; sha256: string | null }> {
  if (entries.length > maxFiles) throw new GatewayError('bad_request', `a manifest may announce at most ${maxFiles} files`);
  const seen = new Set<string>();
  const out = entries.map((e, i) => {
    const path = canonicalPath(e.path);
    if (path === '') throw new GatewayError('bad_request', `files[${i}].path is empty`);
    if (!Number.isSafeInteger(e.size) || e.size < 0) throw new GatewayError('bad_request', `files[${i}].size must be a non-negative integer`);
    const sha256 = e.sha256 ? e.sha256.toLowerCase() : null;
    if (sha256 !== null && !SHA256.test(sha256)) throw new GatewayError('bad_request', `files[${i}].sha256 must be 64 hex digits`);
    if (seen.has(path)) throw new GatewayError('bad_request', `files[${i}].path is announced twice: ${path}`);
    seen.add(path);
    return { path, size: e.size, sha256 };
  });
  for (const { path } of out) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) throw new GatewayError('bad_request', `${dir} is announced as a file and used as a folder`);
    }
  }
  return out;
}

/** Files that protocol listings (WebDAV, SFTP) and downloads serve: folders and complete files only. */
export function isServed(row: FileRow): boolean {
  return row.kind === 'dir' || row.state === 'complete';
}

/** macOS metadata droppings: accepted from the owner, hidden from recipients' listings and zips. */
export function isClientClutter(name: string): boolean {
  return name.startsWith('._') || name === '.DS_Store';
}

/** The one rule for what a principal is not shown: recipients never see client clutter. */
export function hiddenFrom(principal: Principal, path: string): boolean {
  return principal.kind === 'recipient' && isClientClutter(baseName(path));
}

export interface FileView {
  path: string;
  size: number | null;
  state: FileState;
  bytes: number;
  sha256: string | null;
}

export function fileView(row: FileRow, liveBytes: number | null): FileView {
  return {
    path: row.path,
    size: row.state === 'complete' ? row.bytes : row.size,
    state: row.state,
    bytes: liveBytes ?? (row.state === 'complete' ? row.bytes : row.bytes),
    sha256: row.sha256 ?? row.actual_sha256,
  };
}
