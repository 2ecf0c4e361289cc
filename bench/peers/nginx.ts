import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, run, startService, waitForPort, which } from '../lib/proc.js';
import { failed, missing, type Peer } from './peer.js';

export interface Nginx {
  url: string;
  /** Files under this folder are served at url + '/'; under url + '/auth/' with Basic auth. */
  root: string;
}

/** nginx serving `root` statically, as an operator would deploy it (sendfile on, access log off). */
export async function startNginx(dir: string, htpasswd: string): Promise<Peer<Nginx>> {
  const bin = which('nginx');
  if (!bin) return missing('nginx', 'nginx-light');
  const root = join(dir, 'www');
  await mkdir(join(root, 'auth'), { recursive: true });
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const t = join(dir, 'tmp');
  const conf = `
user root;
daemon off;
master_process on;
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path ${t}/body;
  proxy_temp_path ${t}/proxy;
  fastcgi_temp_path ${t}/fastcgi;
  uwsgi_temp_path ${t}/uwsgi;
  scgi_temp_path ${t}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location /auth/ { auth_basic "bench"; auth_basic_user_file ${htpasswd}; }
  }
}
`;
  const file = join(dir, 'nginx.conf');
  await writeFile(file, conf);
  const svc = startService('nginx', bin, ['-c', file, '-p', dir, '-e', join(dir, 'error.log')]);
  try {
    await waitForPort(port, svc, 10_000);
  } catch (err) {
    await svc.stop();
    return failed('nginx', err);
  }
  const v = await run(bin, ['-v'], { timeoutMs: 5000 });
  return { ok: true, svc, value: { url: `http://127.0.0.1:${port}`, root }, version: (v.stderr + v.stdout).trim().replace(/^nginx version: /, '') };
}
