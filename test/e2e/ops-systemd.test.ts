import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/shared/packageRoot.js';
import { hasTool } from '../helpers/tools.js';

const unitDir = join(packageRoot(), 'systemd');

test('systemd-analyze verify passes for handoff.service pointed at this checkout', async (t) => {
  if (!hasTool('systemd-analyze')) return void t.pass('skipped: systemd-analyze missing (Debian package systemd)');
  const dir = await mkdtemp(join(tmpdir(), 'handoff-unit-'));
  try {
    const unit = await readFile(join(unitDir, 'handoff.service'), 'utf8');
    for (const key of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=', 'PrivateTmp=yes', 'ProtectHome=yes', 'Restart=on-failure', 'ExecReload=/bin/kill -HUP $MAINPID', 'User=handoff']) {
      t.true(unit.includes(key), `unit sets ${key}`);
    }
    // The shipped unit names /opt/handoff; point a copy at the real node and build so verify can check ExecStart.
    const main = join(packageRoot(), 'dist', 'src', 'main.js');
    const copy = unit
      .replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} ${main} serve`)
      .replace(/^ReadWritePaths=.*$/m, `ReadWritePaths=${dir}`)
      .replace(/^WorkingDirectory=.*$/m, `WorkingDirectory=${dir}`);
    const file = join(dir, 'handoff.service');
    await writeFile(file, copy);
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    t.is(r.stderr.trim(), '', 'no warnings');
    const sec = spawnSync('systemd-analyze', ['security', '--offline=yes', file], { encoding: 'utf8' });
    const level = /Overall exposure level for handoff\.service: ([\d.]+)/.exec(sec.stdout);
    t.truthy(level, sec.stderr);
    t.true(Number(level![1]) <= 2.5, `exposure ${level![1]} (systemd-analyze security)`);
    t.log(`systemd-analyze security exposure: ${level![1]}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sysusers and tmpfiles create the dedicated user and a private data folder', async (t) => {
  if (!hasTool('systemd-sysusers') || !hasTool('systemd-tmpfiles')) return void t.pass('skipped: systemd-sysusers/tmpfiles missing (Debian package systemd)');
  const root = await mkdtemp(join(tmpdir(), 'handoff-root-'));
  try {
    await mkdir(join(root, 'etc'));
    const u = spawnSync('systemd-sysusers', [`--root=${root}`, join(unitDir, 'handoff.sysusers')], { encoding: 'utf8' });
    t.is(u.status, 0, u.stderr);
    t.regex(await readFile(join(root, 'etc', 'passwd'), 'utf8'), /^handoff:x:\d+:\d+:Handoff gateway:\/var\/lib\/handoff:\/usr\/sbin\/nologin$/m);
    const f = spawnSync('systemd-tmpfiles', ['--create', `--root=${root}`, join(unitDir, 'handoff.tmpfiles')], { encoding: 'utf8' });
    t.is(f.status, 0, f.stderr);
    const s = await stat(join(root, 'var', 'lib', 'handoff'));
    t.is(s.mode & 0o777, 0o700);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
