import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../cli/io.js';

/** Where the sender application keeps its profile (config) and its upload queues (data): XDG folders. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'handoff');
}

export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share'), 'handoff');
}

export interface Connection {
  server: string;
  token: string;
}

interface ProfileFile {
  server: string;
  token: string;
  savedAt: string;
}

const profilePath = () => join(configDir(), 'profile.json');

/** A server URL without trailing slash; refuses what is not http(s). */
export function normaliseServer(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`${url} is not a URL; give the gateway address, e.g. https://files.example.com`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`${url} must start with http:// or https://`);
  return u.toString().replace(/\/+$/, '');
}

/** Saved with mode 0600 (the token is a secret), written to a temp name and renamed into place. */
export async function saveProfile(conn: Connection): Promise<string> {
  const dir = configDir();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = profilePath();
  const tmp = `${file}.${process.pid}.tmp`;
  const body: ProfileFile = { server: conn.server, token: conn.token, savedAt: new Date().toISOString() };
  await writeFile(tmp, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return file;
}

async function loadProfile(): Promise<Partial<ProfileFile>> {
  try {
    const parsed = JSON.parse(await readFile(profilePath(), 'utf8')) as Partial<ProfileFile>;
    return typeof parsed === 'object' && parsed ? parsed : {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UserError(`cannot read ${profilePath()}: run "handoff login URL" again`);
  }
}

/** --server/--token, then HANDOFF_SERVER/HANDOFF_TOKEN, then the saved profile. */
export async function resolveConnection(opts: { server?: string; token?: string }): Promise<Connection> {
  const profile = opts.server && opts.token ? {} : await loadProfile();
  const server = opts.server || process.env.HANDOFF_SERVER || profile.server;
  const token = opts.token || process.env.HANDOFF_TOKEN || profile.token;
  if (!server) throw new UserError('no gateway configured: run "handoff login URL" or pass --server URL (or set HANDOFF_SERVER)');
  if (!token) throw new UserError('no API token: run "handoff login URL" or pass --token T (or set HANDOFF_TOKEN)');
  return { server: normaliseServer(server), token };
}
