import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { freePort, run, startService, waitForPort, which } from '../lib/proc.js';
import { failed, missing, type Peer } from './peer.js';

export interface Apache {
  /** WebDAV share (Basic auth) at url + '/dav/', backed by `root`. */
  url: string;
  root: string;
}

const MODULES = ['mpm_event', 'authn_core', 'authn_file', 'authz_core', 'authz_user', 'auth_basic', 'dav', 'dav_fs'];

/** Apache httpd with mod_dav_fs, run directly with its own config (not the system service). */
export async function startApache(dir: string, htpasswd: string): Promise<Peer<Apache>> {
  const bin = which('apache2') ?? which('httpd');
  if (!bin) return missing('apache2', 'apache2');
  const moduleDir = '/usr/lib/apache2/modules';
  const docroot = join(dir, 'docroot');
  const root = join(docroot, 'dav');
  await mkdir(root, { recursive: true });
  // httpd will not serve as root: its workers run as www-data, which must reach and write the share.
  const owner = await run('id', ['-u', 'www-data'], { timeoutMs: 5000 });
  const runAs = owner.code === 0 ? 'www-data' : null;
  if (runAs) {
    await chmod(dirname(dir), 0o755);
    await run('chown', ['-R', 'www-data:www-data', dir], { timeoutMs: 10_000 });
  }
  const port = await freePort();
  const conf = `
ServerRoot ${dir}
ServerName 127.0.0.1
${runAs ? `User ${runAs}\nGroup ${runAs}` : ''}
Listen 127.0.0.1:${port}
PidFile ${dir}/httpd.pid
DefaultRuntimeDir ${dir}
ErrorLog ${dir}/error.log
LogLevel warn
${MODULES.map((m) => `LoadModule ${m}_module ${moduleDir}/mod_${m}.so`).join('\n')}
KeepAlive On
MaxKeepAliveRequests 0
LimitRequestBody 0
DavLockDB ${dir}/davlock
DocumentRoot ${docroot}
<Directory ${root}>
  Dav On
  AuthType Basic
  AuthName "bench"
  AuthUserFile ${htpasswd}
  Require valid-user
  Options None
  AllowOverride None
</Directory>
`;
  const file = join(dir, 'httpd.conf');
  await writeFile(file, conf);
  const svc = startService('apache2', bin, ['-f', file, '-d', dir, '-DFOREGROUND']);
  try {
    await waitForPort(port, svc, 10_000);
  } catch (err) {
    await svc.stop();
    const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
    return failed('apache2', new Error(`${(err as Error).message} ${log.trim().split('\n').slice(-3).join(' ')}`));
  }
  const v = await run(bin, ['-v'], { timeoutMs: 5000 });
  const version = /Server version: (\S+)/.exec(v.stdout)?.[1] ?? v.stdout.trim();
  return { ok: true, svc, value: { url: `http://127.0.0.1:${port}`, root }, version };
}
