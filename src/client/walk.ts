import { opendir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../cli/io.js';

/** One local file to send: where it is, where it goes in the event, and what it looked like when announced. */
export interface LocalFile {
  localPath: string;
  path: string;
  size: number;
  mtimeMs: number;
}

/**
 * Expands the PATHs of `send`/`add`: a file goes to the event root under its name, a folder keeps
 * its name as the top folder (like `scp -r`). Symlinks to files are followed; sockets, devices and
 * FIFOs are skipped. `prefix` places everything under a folder of the event.
 */
export async function walkPaths(args: string[], prefix = ''): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  const base = prefix.replace(/^\/+|\/+$/g, '');
  for (const arg of args) {
    const abs = resolve(arg);
    let st;
    try {
      st = await stat(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UserError(`${arg}: ${code === 'ENOENT' ? 'no such file or folder' : code === 'EACCES' ? 'permission denied' : String(code)}`);
    }
    const name = basename(abs);
    const rel = base ? `${base}/${name}` : name;
    if (st.isDirectory()) await walkDir(abs, rel, out);
    else if (st.isFile()) out.push({ localPath: abs, path: rel, size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
    else throw new UserError(`${arg}: not a regular file or folder`);
  }
  const seen = new Set<string>();
  for (const f of out) {
    if (seen.has(f.path)) throw new UserError(`two files would both be ${f.path} in the event: rename one or send them separately`);
    seen.add(f.path);
  }
  return out;
}

async function walkDir(dir: string, rel: string, out: LocalFile[]): Promise<void> {
  const entries = [];
  for await (const e of await opendir(dir)) entries.push(e.name);
  entries.sort();
  for (const name of entries) {
    const abs = join(dir, name);
    let st;
    try {
      st = await stat(abs);
    } catch {
      continue; // a dangling symlink or a file gone meanwhile: nothing to send
    }
    if (st.isDirectory()) await walkDir(abs, `${rel}/${name}`, out);
    else if (st.isFile()) out.push({ localPath: abs, path: `${rel}/${name}`, size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
  }
}
