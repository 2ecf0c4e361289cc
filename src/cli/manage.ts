import type { Command } from 'commander';
import { readFile, rm } from 'node:fs/promises';
import { formatBytes } from '../client/format.js';
import { lockHolder } from '../client/lock.js';
import { newQueueFile, Queue } from '../client/queue.js';
import { print, printJson, UserError } from './io.js';
import { client, eventArg, expiresArg, positiveIntArg, UsageError, withConnection, type ConnOptions } from './senderCommon.js';

/** Event management for senders: ls, rm, recipients add|revoke, log, close, delete. */
export function registerManageCommands(program: Command): void {
  withConnection(program.command('ls [event]'))
    .description('without EVENT: your events; with EVENT: its files with state and size')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, opts: ConnOptions) => {
      const api = await client(opts);
      if (!id) {
        const events = await api.listEvents();
        if (opts.json) return printJson(events);
        if (events.length === 0) return print('no events yet: "handoff send PATH..." creates one');
        for (const e of events) print(`${e.id}  ${e.state.padEnd(7)}  expires ${e.expiresAt}  ${formatBytes(e.usedBytes).padStart(10)}  ${e.title}`.trimEnd());
        return;
      }
      const event = await api.getEvent(eventArg(id));
      const files = event.files.filter((f) => f.state !== 'removed');
      if (opts.json) return printJson(files);
      if (files.length === 0) return print(`event ${event.id} holds no files`);
      for (const f of files) print(`${f.state.padEnd(9)} ${formatBytes(f.size).padStart(10)}  ${f.path}`);
    });

  withConnection(program.command('rm <event> <path>'))
    .description('remove a file (or a folder with its files) from an event')
    .action(async (id: string, path: string, opts: ConnOptions) => {
      const eventId = eventArg(id);
      const clean = path.replace(/^\/+|\/+$/g, '');
      if (!clean) throw new UsageError('give the path of a file or folder inside the event');
      const api = await client(opts);
      await api.removeFile(eventId, clean);
      // A queued upload of that file would bring it back: cancel it.
      const queue = new Queue(eventId);
      const state = await queue.read();
      const queued = state?.files.filter((f) => (f.path === clean || f.path.startsWith(`${clean}/`)) && f.state !== 'done') ?? [];
      if (queued.length > 0) await queue.enqueue(queued.map((f) => newQueueFile(f, { state: 'cancelled', error: 'removed with handoff rm' })));
      print(`removed ${clean} from ${eventId}`);
    });

  const recipients = program.command('recipients').description('add or revoke recipients of an event');
  withConnection(recipients.command('add <event> <name>'))
    .description('create a recipient; prints its username and password once')
    .option('--ssh-key <file>', 'OpenSSH public key file the recipient may log in to SFTP with')
    .option('--expires <when>', 'credential lifetime: 90s, 12h, 7d or an ISO-8601 time')
    .option('--max-downloads <n>', 'downloads allowed to this recipient')
    .option('--json', 'print JSON')
    .action(async (id: string, name: string, opts: ConnOptions & { sshKey?: string; expires?: string; maxDownloads?: string }) => {
      const eventId = eventArg(id);
      const expires = opts.expires === undefined ? undefined : expiresArg(opts.expires);
      const maxDownloads = opts.maxDownloads === undefined ? undefined : positiveIntArg(opts.maxDownloads, '--max-downloads');
      let sshPublicKey: string | undefined;
      if (opts.sshKey) {
        try {
          sshPublicKey = (await readFile(opts.sshKey, 'utf8')).trim();
        } catch (err) {
          throw new UserError(`${opts.sshKey}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot read it'}; give an OpenSSH public key file (e.g. ~/.ssh/id_ed25519.pub)`);
        }
        if (/PRIVATE KEY/.test(sshPublicKey)) throw new UserError(`${opts.sshKey} is a private key: give the .pub file`);
      }
      const api = await client(opts);
      const r = await api.addRecipient(eventId, { name, sshPublicKey, expires, maxDownloads });
      if (opts.json) return printJson(r);
      print(`recipient ${r.name}: user ${r.username}  password ${r.password}  sftp ${r.sftp}${r.expiresAt ? `  expires ${r.expiresAt}` : ''}${r.maxDownloads ? `  max ${r.maxDownloads} downloads` : ''}`);
    });
  withConnection(recipients.command('revoke <event> <name>'))
    .description("revoke a recipient's access now")
    .action(async (id: string, name: string, opts: ConnOptions) => {
      const api = await client(opts);
      await api.revokeRecipient(eventArg(id), name);
      print(`revoked ${name}`);
    });

  withConnection(program.command('log <event>'))
    .description("the event's access log")
    .option('--json', 'print JSON')
    .action(async (id: string, opts: ConnOptions) => {
      const api = await client(opts);
      const entries = await api.log(eventArg(id));
      if (opts.json) return printJson(entries);
      if (entries.length === 0) return print('no access yet');
      for (const e of entries) print(`${e.at}  ${e.who}  ${e.protocol}  ${e.action}${e.path ? `  ${e.path}` : ''}${e.bytes !== null ? `  ${e.bytes} B` : ''}${e.ip ? `  ${e.ip}` : ''}`);
    });

  withConnection(program.command('close <event>'))
    .description('close the event for changes (recipients can still download)')
    .action(async (id: string, opts: ConnOptions) => {
      const api = await client(opts);
      const e = await api.updateEvent(eventArg(id), { closed: true });
      print(`closed ${e.id}`);
    });

  withConnection(program.command('delete <event>'))
    .description('purge the event now: files gone, addresses answer 410; stops its local upload')
    .action(async (id: string, opts: ConnOptions) => {
      const eventId = eventArg(id);
      const api = await client(opts);
      await api.deleteEvent(eventId);
      const queue = new Queue(eventId);
      const pid = await lockHolder(queue.lockFile);
      if (pid !== null) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        for (let i = 0; i < 50 && (await lockHolder(queue.lockFile)) !== null; i++) await new Promise((r) => setTimeout(r, 100));
      }
      await rm(queue.dir, { recursive: true, force: true });
      print(`deleted ${eventId}`);
    });
}
