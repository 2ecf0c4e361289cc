import type { Command } from 'commander';
import { ApiClient, type EventInfo } from '../client/api.js';
import { revive, reviveAll } from '../client/background.js';
import { normaliseServer, saveProfile } from '../client/profile.js';
import { ProgressView } from '../client/progress.js';
import { newQueueFile, Queue, type QueueFile, type QueueState } from '../client/queue.js';
import { Uploader } from '../client/uploader.js';
import { walkPaths } from '../client/walk.js';
import { formatBytes } from '../client/format.js';
import { print, printJson, readStdin, UserError } from './io.js';
import { client, eventArg, expiresArg, UsageError, withConnection, type ConnOptions } from './senderCommon.js';
import { registerStatusCommand } from './senderStatus.js';

/** Runs the queue's uploader in this process with progress bars; Ctrl-C stops it resumable. */
async function uploadInForeground(queue: Queue): Promise<void> {
  const uploader = new Uploader(queue);
  const view = new ProgressView();
  let stopping = false;
  // Listeners stay until exit: removing the last SIGINT listener while a signal is handled makes Node re-raise it.
  const onSignal = () => {
    if (stopping) process.exit(130); // a second Ctrl-C: leave now, the saved state is still resumable
    stopping = true;
    process.stderr.write('\nstopping; the upload stays resumable: "handoff status" continues it in the background\n');
    void uploader.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const timer = setInterval(() => uploader.state && view.render(uploader.state), 500);
  try {
    const outcome = await uploader.run();
    if (outcome === 'locked') {
      print('another uploader already works on this event; "handoff status" shows its progress');
      return;
    }
    if (uploader.state) view.render(uploader.state, true);
    if (outcome === 'stopped') process.exitCode = 130;
    const failed = uploader.state?.files.filter((f) => f.state === 'failed') ?? [];
    if (failed.length > 0) throw new UserError(`${failed.length} file(s) failed: ${failed[0].path}: ${failed[0].error}`);
  } finally {
    clearInterval(timer);
  }
}

function printEvent(e: EventInfo): void {
  print(`event ${e.id}${e.title ? `  "${e.title}"` : ''}  expires ${e.expiresAt}`);
  print(`web:    ${e.addresses.web}`);
  print(`webdav: ${e.addresses.webdav}`);
  print(`sftp:   ${e.addresses.sftp}`);
  for (const r of e.recipients) {
    print(`recipient ${r.name}: user ${r.username}  password ${r.password ?? '(not shown)'}  sftp ${r.sftp}`);
  }
}

async function startQueue(api: ApiClient, event: { id: string; expiresAt: string | null }, files: QueueFile[], wait: boolean): Promise<Queue> {
  const queue = new Queue(event.id);
  await queue.ensure();
  const existing = await queue.read();
  if (existing) await queue.enqueue(files);
  else {
    const state: QueueState = {
      version: 1, eventId: event.id, server: api.conn.server, token: api.conn.token, expiresAt: event.expiresAt, files,
      uploader: { pid: 0, state: 'stopped', updatedAt: Date.now(), rate: 0 },
    };
    await queue.write(state);
  }
  if (wait) await uploadInForeground(queue);
  else await revive(queue);
  return queue;
}

export function registerSenderCommands(program: Command): void {
  program
    .command('login <url>')
    .description('save the gateway address and an API token (read from --token or standard input) in your profile')
    .option('--token <token>', 'API token (from "handoff token create"); default: read from standard input')
    .action(async (url: string, opts: { token?: string }) => {
      const server = normaliseServer(url);
      let token = opts.token;
      if (!token) {
        if (process.stdin.isTTY) process.stderr.write('API token: ');
        token = (await readStdin()).trim();
      }
      if (!token) throw new UsageError('no token given: pass --token T or pipe it on standard input');
      const api = new ApiClient({ server, token });
      await api.listEvents();
      const file = await saveProfile({ server, token });
      print(`logged in to ${server}; profile saved in ${file}`);
    });

  withConnection(program.command('send <paths...>'))
    .description('create an event with these files (folders recurse), print its addresses and credentials, upload in the background')
    .option('--recipient <name>', 'a recipient to create (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--expires <when>', 'event lifetime: 90s, 12h, 7d or an ISO-8601 time (default: the gateway\'s)')
    .option('--title <title>', 'a title shown to recipients')
    .option('--wait', 'stay in the foreground with a progress bar (Ctrl-C leaves the upload resumable)')
    .option('--json', 'print the event, addresses and credentials as JSON')
    .action(async (paths: string[], opts: ConnOptions & { recipient: string[]; expires?: string; title?: string; wait?: boolean }) => {
      const expires = opts.expires === undefined ? undefined : expiresArg(opts.expires);
      const api = await client(opts, false); // other queues are revived after the addresses are out
      const files = await walkPaths(paths);
      if (files.length === 0) throw new UserError('nothing to send: the folders given hold no files');
      const event = await api.createEvent({
        title: opts.title, expires, files: files.map((f) => ({ path: f.path, size: f.size })), recipients: opts.recipient.map((name) => ({ name })),
      });
      const total = files.reduce((n, f) => n + f.size, 0);
      const queue = new Queue(event.id);
      if (opts.json) printJson({ ...event, upload: { files: files.length, bytes: total, background: !opts.wait, log: queue.logFile } });
      else {
        printEvent(event);
        print(`${opts.wait ? 'uploading' : 'uploading in the background'}: ${files.length} file(s), ${formatBytes(total)}; "handoff status ${event.id}" shows progress`);
      }
      await startQueue(api, event, files.map((f) => newQueueFile(f)), Boolean(opts.wait));
      if (!opts.wait) await reviveAll().catch(() => undefined); // after Ctrl-C of --wait, the user asked to stop
    });

  withConnection(program.command('add <event> <paths...>'))
    .description('announce more files in an event and upload them in the background')
    .option('--to <folder>', 'place them under this folder of the event')
    .option('--wait', 'stay in the foreground with a progress bar')
    .option('--json', 'print the updated event as JSON')
    .action(async (id: string, paths: string[], opts: ConnOptions & { to?: string; wait?: boolean }) => {
      const eventId = eventArg(id);
      const api = await client(opts);
      const files = await walkPaths(paths, opts.to ?? '');
      if (files.length === 0) throw new UserError('nothing to add: the folders given hold no files');
      const event = await api.announce(eventId, files.map((f) => ({ path: f.path, size: f.size })));
      if (opts.json) printJson(event);
      else print(`announced ${files.length} file(s), ${formatBytes(files.reduce((n, f) => n + f.size, 0))} in ${eventId}; uploading${opts.wait ? '' : ' in the background'}`);
      await startQueue(api, event, files.map((f) => newQueueFile(f)), Boolean(opts.wait));
    });

  registerStatusCommand(program);

  program
    .command('__uploader <event>', { hidden: true })
    .description('the background uploader of one event (started by send/add/mount/status)')
    .action(async (id: string) => {
      const queue = new Queue(eventArg(id));
      const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
      const uploader = new Uploader(queue, log);
      const stop = () => void uploader.stop();
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      process.on('SIGHUP', () => undefined); // the shell that started us may go away
      log(`uploader ${process.pid} started`);
      const outcome = await uploader.run();
      log(`uploader ${process.pid} ended: ${outcome}`);
    });
}
