import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../../src/shared/packageRoot.js';
import { GATEWAY_MALLOC_ENV, GATEWAY_NODE_FLAGS, missingTuning } from '../../src/shared/runtimeTuning.js';

const expectedEnv = Object.entries(GATEWAY_MALLOC_ENV).map(([k, v]) => `${k}=${v}`);

test('the systemd unit starts node with the memory tuning', async (t) => {
  const unit = await readFile(join(packageRoot(), 'systemd', 'handoff.service'), 'utf8');
  const exec = unit.match(/^ExecStart=(.*)$/m)?.[1] ?? '';
  for (const f of GATEWAY_NODE_FLAGS) t.true(exec.split(' ').includes(f), `ExecStart lacks ${f}: ${exec}`);
  const env = [...unit.matchAll(/^Environment=(.*)$/gm)].flatMap((m) => m[1].split(' '));
  for (const kv of expectedEnv) t.true(env.includes(kv), `no Environment=${kv}`);
});

test('npm start runs the gateway with the same tuning', async (t) => {
  const pkg = JSON.parse(await readFile(join(packageRoot(), 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const words = pkg.scripts.start.split(' ');
  for (const f of GATEWAY_NODE_FLAGS) t.true(words.includes(f), `npm start lacks ${f}`);
  for (const kv of expectedEnv) t.true(words.includes(kv), `npm start lacks ${kv}`);
});

test('missingTuning names what a process was started without', (t) => {
  t.deepEqual(missingTuning([], {}), [...GATEWAY_NODE_FLAGS, ...expectedEnv]);
  t.deepEqual(missingTuning([...GATEWAY_NODE_FLAGS], { ...GATEWAY_MALLOC_ENV }), []);
  t.deepEqual(missingTuning([], { NODE_OPTIONS: GATEWAY_NODE_FLAGS.join(' '), ...GATEWAY_MALLOC_ENV }), []);
  t.deepEqual(missingTuning([...GATEWAY_NODE_FLAGS], { ...GATEWAY_MALLOC_ENV, MALLOC_TRIM_THRESHOLD_: '1' }), ['MALLOC_TRIM_THRESHOLD_=524288']);
});
