import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { checkUnchanged } from './source.js';

/**
 * sha256 of a local file, checked against its announced size and mtime before and after. Read
 * once before the upload so the digest can be declared in the tus creation request (Upload-Metadata
 * is sent before any byte): the gateway then verifies the whole file, across resumes and processes.
 */
export async function hashFile(f: { localPath: string; size: number; mtimeMs: number }, signal?: AbortSignal): Promise<string> {
  await checkUnchanged(f.localPath, f.size, f.mtimeMs);
  const h = createHash('sha256');
  for await (const chunk of createReadStream(f.localPath, { highWaterMark: 1024 * 1024, signal })) h.update(chunk as Buffer);
  await checkUnchanged(f.localPath, f.size, f.mtimeMs);
  return h.digest('hex');
}
