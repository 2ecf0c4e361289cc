import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCENARIOS } from '../../bench/scenarios/keys.js';
import { packageRoot } from '../../src/shared/packageRoot.js';

interface Row {
  gateway: number | null;
  peer: number | null;
  unit: string;
  ratio: number | null;
  rssMB: number | null;
  skipped?: string;
  peerSkipped?: string;
}

const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

/**
 * `npm run bench -- --quick` end to end: results.json must hold every scenario, each with numbers or
 * an explicit skip reason. The figures themselves are not checked (speed belongs to the bench).
 */
test('bench --quick writes a complete results.json', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-bench-test-'));
  const out = join(dir, 'results.json');
  try {
    const root = packageRoot();
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(root, 'dist', 'bench', 'run.js'), '--quick', '--out', out], { cwd: root, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 }, (err, so, se) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: so, stderr: se }),
      );
    });
    t.is(code, 0, `bench exited ${code}: ${stderr.slice(-1500)}`);
    if (code !== 0) return t.log(stdout.slice(-3000));
    t.regex(stdout, /\| scenario\s+\| gateway/, 'the table is printed');
    const results = JSON.parse(await readFile(out, 'utf8')) as Record<string, Row>;
    t.deepEqual(Object.keys(results).sort(), [...SCENARIOS].sort(), 'exactly the known scenario keys');
    for (const key of SCENARIOS) {
      const r = results[key];
      t.is(typeof r.unit, 'string', `${key}.unit`);
      for (const field of ['gateway', 'peer', 'ratio', 'rssMB'] as const) t.true(field in r, `${key}.${field} present`);
      if (r.skipped) {
        t.true(r.skipped.length > 0, `${key} names why it was skipped`);
        continue;
      }
      t.true(isNum(r.gateway), `${key}.gateway is a number`);
      // A peer is either measured (with a ratio) or explicitly skipped; gateway-only rows have neither.
      if (r.peer !== null) t.true(isNum(r.peer) && isNum(r.ratio), `${key} peer and ratio are numbers`);
      if (r.rssMB !== null) t.true(isNum(r.rssMB), `${key}.rssMB is a number`);
    }
    for (const key of ['http-download-1g', 'zip-20x50m', 'tus-upload-1g', 'auth-get-4k', 'concurrent-50x100m', 'event-create-1000-p99']) {
      t.falsy(results[key].skipped, `${key} runs on every machine: ${results[key].skipped}\n${stdout.slice(-2000)}`);
      t.true(isNum(results[key].rssMB), `${key} has the gateway's RSS`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
