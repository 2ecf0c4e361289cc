import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';

/**
 * The least a server that answers a PUT only once the file is durable must do: stream the body to a
 * temp, rename it into place, flush its data and its folder entry (both at once, as the gateway's
 * LocalBackend does), then answer. No authentication, no metadata, no checks: a reference for how
 * much of a small-file rate is the flush itself. Usage: node durableFloorServer.js ROOT PORT
 */
const [root, port] = process.argv.slice(2);
let n = 0;
await mkdir(join(root, '.partial'), { recursive: true });
/** Folder handles kept open, as the gateway keeps its event folders' (an fsync, not open + fsync + close). */
const folders = new Map<string, FileHandle>();
async function folder(path: string): Promise<FileHandle> {
  let fh = folders.get(path);
  if (!fh) folders.set(path, (fh = await open(path, 'r')));
  return fh;
}

const server = createServer((req, res) => {
  const answer = (status: number) => {
    res.writeHead(status, { 'content-length': '0' });
    res.end();
  };
  const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  if (rel.split('/').includes('..')) return answer(400);
  const path = join(root, rel);
  if (req.method === 'MKCOL') {
    mkdir(path).then(() => answer(201), () => answer(409));
    return;
  }
  if (req.method !== 'PUT') return answer(405);
  (async () => {
    const temp = join(root, '.partial', String(++n));
    const fh = await open(temp, 'wx', 0o600);
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) await fh.write(chunk);
      await rename(temp, path);
      await Promise.all([fh.sync(), (await folder(dirname(path))).sync()]);
    } finally {
      await fh.close();
    }
  })().then(() => answer(201), () => answer(500));
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1');
