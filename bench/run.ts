import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/shared/packageRoot.js';
import { startGateway, type BenchGateway } from './gateway.js';
import { Bench, formatTable } from './lib/bench.js';
import { makeFile } from './lib/files.js';
import { spreadServerFolders } from './lib/placement.js';
import { runOk, run } from './lib/proc.js';
import { startApache } from './peers/apache.js';
import { startNginx } from './peers/nginx.js';
import type { Peer } from './peers/peer.js';
import { startSshd } from './peers/sshd.js';
import { startDurableFloor } from './peers/durableFloor.js';
import { FULL, QUICK, type Ctx } from './scenarios/context.js';
import { httpScenarios } from './scenarios/http.js';
import { SCENARIOS } from './scenarios/keys.js';
import { sftpScenarios } from './scenarios/sftp.js';
import { webdavScenarios } from './scenarios/webdav.js';

const groupOf = (key: string) => (key.startsWith('webdav-') ? 'WebDAV' : key.startsWith('sftp-') ? 'SFTP' : 'HTTP');

const GROUPS = ['HTTP', 'WebDAV', 'SFTP'] as const;
type Group = (typeof GROUPS)[number];

interface Args {
  quick: boolean;
  out: string;
  /** Scenario groups to run (`--only webdav,sftp` while working on one front-end); all by default. */
  only: Set<Group>;
}

function parseArgs(argv: string[], root: string): Args {
  const args: Args = { quick: false, out: join(root, 'bench', 'results.json'), only: new Set(GROUPS) };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') args.quick = true;
    else if (argv[i] === '--out') args.out = argv[++i];
    else if (argv[i] === '--only') {
      const wanted = (argv[++i] ?? '').split(',').map((g) => GROUPS.find((k) => k.toLowerCase() === g.trim().toLowerCase()));
      if (wanted.length === 0 || wanted.some((g) => !g)) {
        console.error(`--only takes a comma-separated list of ${GROUPS.join(', ')}`);
        process.exit(2);
      }
      args.only = new Set(wanted as Group[]);
    }
    else if (argv[i] === '--help') {
      console.log('usage: npm run bench [-- --quick] [--out FILE] [--only http,webdav,sftp]');
      process.exit(0);
    } else {
      console.error(`unknown option ${argv[i]} (try --help)`);
      process.exit(2);
    }
  }
  return args;
}

async function main(): Promise<void> {
  const root = packageRoot();
  const args = parseArgs(process.argv.slice(2), root);
  const sizes = args.quick ? QUICK : FULL;
  const started = Date.now();
  const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const dir = await mkdtemp(join(tmpdir(), 'handoff-bench-'));
  const stops: Array<() => Promise<void>> = [];
  // Everything is bounded: a stuck client or server ends the run, cleanly, not the machine.
  const watchdog = setTimeout(() => {
    console.error(`bench: over its time limit, stopping`);
    void cleanup().then(() => process.exit(1));
  }, args.quick ? 4 * 60_000 : 60 * 60_000);
  let cleaned = false;
  async function cleanup(): Promise<void> {
    if (cleaned) return;
    cleaned = true;
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  process.on('SIGTERM', () => void cleanup().then(() => process.exit(143)));

  try {
    log(`${args.quick ? 'quick' : 'full'} run in ${dir}`);
    const placement = await spreadServerFolders(dir);
    log(`file placement: ${placement}`);
    const big = await makeFile(join(dir, 'big.bin'), sizes.big);
    const peerUser = { name: 'bench', password: `peer-${Math.random().toString(36).slice(2)}` };
    const htpasswd = join(dir, 'htpasswd');
    const apr1 = (await runOk('openssl', ['passwd', '-apr1', peerUser.password], { timeoutMs: 10_000 })).stdout.trim();
    await writeFile(htpasswd, `${peerUser.name}:${apr1}\n`, { mode: 0o644 });

    log('starting the gateway');
    const g: BenchGateway = await startGateway(root, join(dir, 'gateway'));
    stops.push(() => g.stop());
    log(`gateway ${g.url}, pid ${g.pid}, sftp ${g.sftpPort ?? 'none'}`);
    const peers = {
      nginx: await startNginx(join(dir, 'nginx'), htpasswd),
      apache: await startApache(join(dir, 'apache'), htpasswd),
      sshd: await startSshd(join(dir, 'sshd')),
      durableFloor: await startDurableFloor(join(dir, 'durable-floor')),
    };
    for (const [name, p] of Object.entries(peers) as Array<[string, Peer<unknown>]>) {
      if (p.ok) stops.push(() => p.svc.stop());
      log(p.ok ? `${name} ${p.version}` : `${name} skipped: ${p.reason}`);
    }

    const bench = new Bench(g.pid, sizes.runs, log);
    const ctx: Ctx = { sizes, root, dir, g, bench, ...peers, big, log, peerUser };
    // A group that fails in its setup marks its remaining rows, and the run goes on to the next.
    const failures: string[] = [];
    for (const [name, group] of [['HTTP', httpScenarios], ['WebDAV', webdavScenarios], ['SFTP', sftpScenarios]] as const) {
      if (!args.only.has(name)) {
        for (const key of SCENARIOS) if (groupOf(key) === name) bench.skip([{ key, unit: '' }], 'not selected (--only)');
        continue;
      }
      try {
        await group(ctx);
      } catch (err) {
        const msg = `${name} scenarios failed: ${(err as Error).message.slice(0, 300)}`;
        log(msg);
        failures.push(msg);
        for (const key of SCENARIOS) if (!bench.rows[key] && groupOf(key) === name) bench.skip([{ key, unit: '' }], msg);
      }
    }
    for (const key of SCENARIOS) if (!bench.rows[key]) bench.skip([{ key, unit: '' }], 'not run');
    const curlVersion = (await run('curl', ['--version'], { timeoutMs: 5000 })).stdout.split('\n')[0];
    const machine = `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${curlVersion.split(' ').slice(0, 2).join(' ')}`;
    const versions = Object.entries(peers).map(([n, p]) => `${n}: ${p.ok ? p.version : 'skipped'}`).join(', ');
    console.log(`\n${args.quick ? 'QUICK (reduced sizes) ' : ''}results — ${machine}\npeers — ${versions}\nfile placement — ${placement}\n`);
    console.log(formatTable(bench.rows));
    await writeFile(args.out, JSON.stringify(bench.rows, null, 2) + '\n');
    log(`wrote ${args.out}`);
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
