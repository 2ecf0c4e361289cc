import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { describeRecovery } from '../cache/recovery.js';
import { Gateway, type GatewayOptions } from '../gateway.js';
import { createLogger } from '../shared/log.js';
import { print, printJson, readStdin, UserError } from './io.js';
import { missingTuning } from '../shared/runtimeTuning.js';

/** Admin commands may run beside a live server: no recovery (it would cut that server's uploads). */
async function withGateway<T>(configFile: string | undefined, fn: (g: Gateway) => Promise<T>, recovery: GatewayOptions['recovery'] = 'skip'): Promise<T> {
  const config = loadConfig(configFile);
  const g = await Gateway.create(config, { log: createLogger('warn'), recovery });
  try {
    return await fn(g);
  } finally {
    await g.stop(0);
  }
}

const configOption = ['--config <file>', 'JSON config merged over config/default.json (or HANDOFF_CONFIG)'] as const;

/** Server-side commands: they act on the configured database directly. */
export function registerServerCommands(program: Command): void {
  program
    .command('serve')
    .description('run HTTP (web, API, WebDAV, admin), SFTP and the scheduler')
    .option(...configOption)
    .action(async (opts: { config?: string }) => {
      const config = loadConfig(opts.config);
      const gateway = await Gateway.create(config, { announce: print });
      // systemd ExecReload: a renewed certificate is picked up without a restart (and a SIGHUP
      // during start-up must not kill the process, which is Node's default).
      process.on('SIGHUP', () => void gateway.reload().catch(() => undefined));
      await gateway.start();
      const untuned = missingTuning(process.execArgv, process.env);
      if (untuned.length > 0) gateway.log.info({ missing: untuned }, 'started without the memory tuning of the systemd unit and npm start (README, "Memory")');
      const users = await gateway.accounts.list();
      if (users.length === 0) print(`no accounts yet: create an admin with "handoff user add NAME --role admin"`);
      print(`admin panel: ${gateway.publicUrl}/admin/`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        gateway.log.info({ signal }, 'shutting down');
        gateway.stop(10_000).then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });

  program
    .command('check')
    .description('validate the config and storage, print what would be served')
    .option(...configOption)
    .action(async (opts: { config?: string }) => {
      await withGateway(opts.config, async (g) => {
        const space = await g.storage.space();
        const c = g.config;
        print(`config ok`);
        print(`database: ${c.database.file}`);
        print(`storage: ${c.storage.driver} ${c.storage.root} (${Math.round(space.freeBytes / 2 ** 30)} GiB free of ${Math.round(space.totalBytes / 2 ** 30)} GiB)`);
        print(`http: ${c.http.tls.cert ? 'https' : 'http'}://${c.http.host}:${c.http.port}  public: ${c.publicUrl}`);
        print(`sftp: ${c.sftp.host}:${c.sftp.port}`);
        print(`accounts: ${(await g.accounts.list()).length}`);
        const r = g.recovery!;
        print('consistency (what the next "handoff serve" start repairs; beside a running server, counts may include its live uploads):');
        for (const line of describeRecovery(r)) print(`  ${line}`);
        const bans = (await g.lockout.list()).filter((e) => e.bannedUntil !== null && e.bannedUntil > Date.now());
        print(`lockout: ${bans.length} banned key(s)${bans.length ? ' (see "handoff lockout list")' : ''}`);
        if (r.quickCheck !== 'ok') throw new UserError(`database check failed (${r.quickCheck}): restore from a backup, see README "Operations"`);
      }, 'report');
    });

  const lockout = program.command('lockout').description('failed-login lockout: list scored addresses and names, lift bans');
  lockout
    .command('list')
    .description('list addresses and usernames with failed logins, banned ones first')
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      await withGateway(opts.config, async (g) => {
        const now = Date.now();
        const list = await g.lockout.list();
        if (opts.json) return printJson(list.map((e) => ({ ...e, banned: e.bannedUntil !== null && e.bannedUntil > now })));
        if (list.length === 0) return print('no failed logins recorded');
        for (const e of list) {
          const ban = e.bannedUntil !== null && e.bannedUntil > now ? `banned until ${new Date(e.bannedUntil).toISOString()}` : 'not banned';
          print(`${e.key}\tscore ${e.score}\tstrikes ${e.strikes}\t${ban}`);
        }
      });
    });
  lockout
    .command('clear [key]')
    .description('lift the ban and forget the score of KEY (ip:ADDR, ip6:PREFIX, user:NAME, a bare address or name); all keys without KEY')
    .option(...configOption)
    .action(async (key: string | undefined, opts: { config?: string }) => {
      await withGateway(opts.config, async (g) => {
        const n = await g.lockout.clear(key);
        if (key && n === 0) throw new UserError(`no lockout entry for ${key} (see "handoff lockout list")`);
        print(`cleared ${n} lockout entr${n === 1 ? 'y' : 'ies'}`);
      });
    });

  const user = program.command('user').description('manage admin and sender accounts');
  user
    .command('add <name>')
    .description('create an account; prints a generated password unless --password-stdin')
    .requiredOption('--role <role>', 'admin or sender')
    .option('--password-stdin', 'read the password from standard input')
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { role: string; passwordStdin?: boolean; config?: string; json?: boolean }) => {
      if (opts.role !== 'admin' && opts.role !== 'sender') throw new UserError('--role must be admin or sender');
      const password = opts.passwordStdin ? await readStdin() : undefined;
      await withGateway(opts.config, async (g) => {
        const r = await g.accounts.add(name, opts.role as 'admin' | 'sender', password);
        if (opts.json) printJson({ ...r.account, password: r.password ?? undefined });
        else {
          print(`created ${r.account.role} ${r.account.name}`);
          if (r.password) print(`password: ${r.password}`);
        }
      });
    });
  user
    .command('passwd <name>')
    .description('set a new password (generated unless --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .option(...configOption)
    .action(async (name: string, opts: { passwordStdin?: boolean; config?: string }) => {
      const password = opts.passwordStdin ? await readStdin() : undefined;
      await withGateway(opts.config, async (g) => {
        const generated = await g.accounts.setPassword(name, password);
        print(`password changed for ${name}`);
        if (generated) print(`password: ${generated}`);
      });
    });
  user
    .command('list')
    .description('list accounts')
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      await withGateway(opts.config, async (g) => {
        const list = await g.accounts.list();
        if (opts.json) printJson(list);
        else for (const a of list) print(`${a.name}\t${a.role}${a.disabled ? '\tdisabled' : ''}`);
      });
    });
  user
    .command('remove <name>')
    .description('remove an account (disabled instead when it owns events)')
    .option(...configOption)
    .action(async (name: string, opts: { config?: string }) => {
      await withGateway(opts.config, async (g) => {
        await g.accounts.remove(name);
        print(`removed ${name}`);
      });
    });

  const key = user.command('key').description('SSH public keys of an account, for SFTP logins');
  key
    .command('add <name> <file>')
    .description('add the public key in FILE (an id_*.pub file; - for standard input)')
    .option(...configOption)
    .action(async (name: string, file: string, opts: { config?: string }) => {
      const text = file === '-' ? await readStdin() : await readFile(file, 'utf8').catch(() => {
        throw new UserError(`cannot read ${file}`);
      });
      await withGateway(opts.config, async (g) => print(`added ${await g.accounts.addSshKey(name, text)} for ${name}`));
    });
  key
    .command('list <name>')
    .description("list an account's SSH keys")
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { config?: string; json?: boolean }) => {
      await withGateway(opts.config, async (g) => {
        const keys = await g.accounts.sshKeys(name);
        if (opts.json) printJson(keys);
        else for (const k of keys) print(`${k.fingerprint}\t${k.publicKey.split(' ')[0]}\t${k.createdAt}`);
      });
    });
  key
    .command('remove <name> <fingerprint>')
    .description('remove a key by its SHA256: fingerprint')
    .option(...configOption)
    .action(async (name: string, fingerprint: string, opts: { config?: string }) => {
      await withGateway(opts.config, async (g) => {
        await g.accounts.removeSshKey(name, fingerprint);
        print(`removed ${fingerprint} from ${name}`);
      });
    });

  program
    .command('token')
    .description('API tokens')
    .command('create <name>')
    .description('print a new API token for an account (shown once, stored hashed)')
    .option(...configOption)
    .action(async (name: string, opts: { config?: string }) => {
      await withGateway(opts.config, async (g) => print(await g.accounts.createToken(name)));
    });
}
