import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startService, waitForPort } from '../lib/proc.js';
import { failed, type Peer } from './peer.js';

export interface DurableFloor {
  /** PUT and MKCOL below url + '/'. */
  url: string;
}

/** The durable-PUT reference (durableFloorServer.ts) in a Node process of its own, like the gateway. */
export async function startDurableFloor(dir: string): Promise<Peer<DurableFloor>> {
  const root = join(dir, 'root');
  await mkdir(root, { recursive: true });
  const port = await freePort();
  const script = fileURLToPath(new URL('./durableFloorServer.js', import.meta.url));
  const svc = startService('durable-floor', process.execPath, [script, root, String(port)]);
  try {
    await waitForPort(port, svc, 10_000);
  } catch (err) {
    await svc.stop();
    return failed('durable floor', err);
  }
  return { ok: true, svc, value: { url: `http://127.0.0.1:${port}` }, version: `node ${process.version}` };
}
