import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { davEvent } from '../helpers/dav.js';
import { hasTool } from '../helpers/tools.js';

let gw: TestGateway;

test.before(async () => {
  gw = await startTestGateway();
});

test.after.always(async () => {
  await gw?.stop();
});

function run(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (out += c));
    p.on('error', reject);
    p.on('close', () => resolve(out));
  });
}

test('litmus with the owner credentials: 0 failures in basic, copymove, props, locks, http', async (t) => {
  if (!hasTool('litmus')) {
    t.pass('litmus not installed (Debian package litmus): skipped');
    return;
  }
  const owner = await gw.sender();
  const ev = await davEvent(gw, owner);
  const cwd = await mkdtemp(join(tmpdir(), 'litmus-'));
  try {
    const out = await run('litmus', [ev.url, owner.name, owner.password], cwd);
    const summaries = [...out.matchAll(/<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g)].map((m) => ({
      suite: m[1], run: Number(m[2]), passed: Number(m[3]), failed: Number(m[4]),
    }));
    const fails = out.split('\n').filter((l) => /\bFAIL\b/.test(l));
    t.deepEqual(summaries.map((s) => s.suite), ['basic', 'copymove', 'props', 'locks', 'http'], out.slice(-2000));
    for (const s of summaries) t.is(s.failed, 0, `${s.suite}: ${s.passed}/${s.run}`);
    t.deepEqual(fails, []);
    t.log(summaries.map((s) => `${s.suite} ${s.passed}/${s.run}`).join(', '));
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
});
