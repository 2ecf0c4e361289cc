import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/shared/log.js';
import { b64, rawRequest, startServe, type ServeChild } from '../helpers/ops.js';
import { hasTool, missingToolMessage } from '../helpers/tools.js';

let dir: string;
let serve: ServeChild | null = null;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-durable-'));
});
test.after.always(async () => {
  serve?.child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

interface Call {
  name: string;
  args: string;
  result: string;
}

/** Completed system calls in the order they returned, from `strace -f -y` output (unfinished/resumed paired per thread). */
function completedCalls(trace: string): Call[] {
  const pending = new Map<string, { name: string; args: string }>();
  const calls: Call[] = [];
  for (const line of trace.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, tid, rest] = m;
    const unfinished = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest);
    if (unfinished) {
      pending.set(tid, { name: unfinished[1], args: unfinished[2] });
      continue;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$/.exec(rest);
    if (resumed) {
      const start = pending.get(tid);
      pending.delete(tid);
      calls.push({ name: resumed[1], args: (start?.args ?? '') + resumed[2], result: resumed[3] });
      continue;
    }
    const whole = /^(\w+)\((.*)\)\s+= (.*)$/.exec(rest);
    if (whole) calls.push({ name: whole[1], args: whole[2], result: whole[3] });
  }
  return calls;
}

test('a WebDAV PUT is answered only after fsync of the data and its folder, then the commit, then an fdatasync of the database WAL', async (t) => {
  if (!hasTool('strace')) return t.pass(missingToolMessage('strace'));
  const configFile = join(dir, 'config.json');
  const config = { dataDir: join(dir, 'data'), http: { port: 0 }, sftp: { port: 0 }, auth: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } }, log: { level: 'warn' } };
  await writeFile(configFile, JSON.stringify(config));
  const setup = await Gateway.create(parseConfig(config), { log: createLogger('warn') });
  await setup.accounts.add('alice', 'sender', 'alice-password-long');
  const token = await setup.accounts.createToken('alice');
  await setup.stop(0);
  serve = await startServe(configFile);
  const created = await rawRequest(`${serve.url}/api/v1/events`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ files: [] }),
  });
  const id = JSON.parse(created.body.toString()).id as string;
  const basic = `Basic ${b64('alice:alice-password-long')}`;
  // A first PUT makes the event's storage folder; the traced one is an ordinary upload into it.
  t.is((await rawRequest(`${serve.url}/dav/${id}/first.txt`, { method: 'PUT', headers: { authorization: basic }, body: Buffer.from('first') })).status, 201);

  const out = join(dir, 'strace.txt');
  // Every flush is held 150 ms on its way back, so an answer that did not wait for one would overtake it.
  const tracer = spawn('strace', ['-f', '-y', '-qq', '-s', '48', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,pwrite64,write,writev', '-e', 'inject=fsync,fdatasync:delay_exit=150000', '-o', out, '-p', String(serve.child.pid)], { stdio: 'ignore' });
  const traced = new Promise((resolve) => tracer.on('exit', resolve));
  // strace creates its output file once attached to every thread.
  for (let i = 0; i < 100 && !(await stat(out).then(() => true, () => false)); i++) await sleep(50);
  await sleep(300);
  const put = await rawRequest(`${serve.url}/dav/${id}/durable.txt`, { method: 'PUT', headers: { authorization: basic }, body: Buffer.from('durable body') });
  t.is(put.status, 201);
  await sleep(500);
  tracer.kill('SIGINT');
  await traced;

  const calls = completedCalls(await readFile(out, 'utf8'));
  const index = (what: string, pred: (c: Call) => boolean, from = 0): number => {
    const i = calls.findIndex((c, k) => k >= from && pred(c));
    t.true(i >= 0, `${what} not found in the trace`);
    return i;
  };
  const storage = join(config.dataDir, 'storage', id);
  const data = index('the body written to a temp', (c) => c.name === 'pwrite64' && c.args.includes('/.partial/') && c.args.includes('"durable body"'));
  const renamed = index('the rename of the temp', (c) => c.name.startsWith('rename') && c.args.includes('/.partial/'), data);
  const blob = /"([^"]+)"\)?$/.exec(calls[renamed].args.replace(/, \d+$/, ''))?.[1] ?? '';
  t.true(blob.startsWith(storage + '/'), calls[renamed].args);
  const fileSynced = index('fsync of the renamed file', (c) => /^f(data)?sync$/.test(c.name) && c.args.includes(`<${blob}>`), renamed);
  const dirSynced = index('fsync of its folder', (c) => c.name === 'fsync' && c.args.includes(`<${storage}>`), renamed);
  const flushed = Math.max(fileSynced, dirSynced);
  const commit = index('the commit written to the WAL', (c) => c.name === 'pwrite64' && c.args.includes('handoff.db-wal>'), flushed);
  const walSynced = index('fdatasync of the WAL', (c) => /^f(data)?sync$/.test(c.name) && c.args.includes('handoff.db-wal>'), commit);
  const answer = index('the 201 on the socket', (c) => /^write/.test(c.name) && c.args.includes('socket:') && c.args.includes('HTTP/1.1 201'), data);
  t.true(flushed < answer, 'the answer leaves only after the data and its folder are on disk');
  t.true(walSynced < answer, 'the answer leaves only after the commit is on disk');
  serve.child.kill('SIGTERM');
  t.is(await serve.exited, 0);
  serve = null;
});
