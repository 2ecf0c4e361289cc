import type { Command } from 'commander';
import type { ApiClient, EventInfo, FileInfo } from '../client/api.js';
import { revive } from '../client/background.js';
import { formatBytes } from '../client/format.js';
import { lockHolder } from '../client/lock.js';
import { isTerminal, listQueues, Queue, type QueueFile, type QueueState } from '../client/queue.js';
import { print, printJson, UserError } from './io.js';
import { client, eventArg, UsageError, withConnection, type ConnOptions } from './senderCommon.js';

export type LocalState = 'running' | 'waiting to retry' | 'done' | 'failed' | 'revived' | 'stopped' | 'none';

export interface LocalStatus {
  state: LocalState;
  pid: number | null;
  log: string;
  files: Array<Pick<QueueFile, 'path' | 'state' | 'bytes' | 'size' | 'error' | 'nextAttemptAt'>>;
}

/** The local uploader of an event as a user would describe it; revives it when it died with work left. */
export async function localStatus(queue: Queue): Promise<LocalStatus> {
  const state: QueueState | null = await queue.read();
  let pid = await lockHolder(queue.lockFile);
  let s: LocalState = 'none';
  if (state) {
    const files = state.files;
    const pending = files.filter((f) => !isTerminal(f));
    if (pid !== null) s = pending.some((f) => f.state === 'hashing' || f.state === 'uploading') || pending.length === 0 ? 'running' : 'waiting to retry';
    else if (pending.length > 0 || (await queue.incoming()).length > 0) {
      s = (await revive(queue)) ? 'revived' : 'stopped';
      pid = await lockHolder(queue.lockFile);
    } else s = files.some((f) => f.state === 'failed') ? 'failed' : 'done';
  }
  return {
    state: s, pid, log: queue.logFile,
    files: (state?.files ?? []).map((f) => ({ path: f.path, state: f.state, bytes: f.bytes, size: f.size, error: f.error, nextAttemptAt: f.nextAttemptAt })),
  };
}

function localNote(f: LocalStatus['files'][number] | undefined): string {
  if (!f) return '';
  switch (f.state) {
    case 'retrying':
      return `local: waiting to retry${f.nextAttemptAt ? ` in ${Math.max(0, Math.round((f.nextAttemptAt - Date.now()) / 1000))} s` : ''} (${f.error})`;
    case 'failed':
      return `local: failed: ${f.error}`;
    case 'uploading':
      return `local: uploading ${formatBytes(f.bytes)}`;
    case 'cancelled':
      return 'local: cancelled';
    case 'done':
      return '';
    default:
      return `local: ${f.state}`;
  }
}

function printStatus(e: EventInfo, local: LocalStatus): void {
  const files = e.files.filter((f) => f.state !== 'removed');
  const complete = files.filter((f) => f.state === 'complete').length;
  const bytes = files.reduce((n, f) => n + (f.state === 'complete' ? (f.size ?? 0) : f.bytes), 0);
  const total = files.reduce((n, f) => n + (f.size ?? 0), 0);
  print(`event ${e.id}${e.title ? ` "${e.title}"` : ''}: ${e.state}, expires ${e.expiresAt}; ${complete} of ${files.length} files complete, ${formatBytes(bytes)} of ${formatBytes(total)}`);
  const pid = local.pid ? ` (pid ${local.pid})` : '';
  const why = local.state === 'failed' ? `: ${local.files.find((f) => f.state === 'failed')?.error}` : '';
  print(`uploader: ${local.state === 'none' ? 'no local upload for this event' : local.state === 'revived' ? `restarted${pid}, resuming` : `${local.state}${pid}${why}`}`);
  const byPath = new Map(local.files.map((f) => [f.path, f]));
  for (const f of files) {
    const shown = f.state === 'complete' ? f.size : f.bytes;
    print(`  ${f.state.padEnd(9)} ${formatBytes(shown).padStart(10)} / ${formatBytes(f.size).padEnd(10)} ${f.path}  ${localNote(byPath.get(f.path))}`.trimEnd());
  }
}

async function oneStatus(api: ApiClient, id: string, json: boolean): Promise<void> {
  const local = await localStatus(new Queue(id));
  let event: EventInfo;
  try {
    event = await api.getEvent(id);
  } catch (err) {
    // The gateway is away: the local side is still worth showing before the error line.
    if (json) printJson({ id, local });
    else {
      print(`uploader: ${local.state}${local.pid ? ` (pid ${local.pid})` : ''}`);
      for (const f of local.files) print(`  ${f.path}  ${localNote(f) || 'local: done'}`);
    }
    throw err;
  }
  if (json) printJson({ ...event, local });
  else printStatus(event, local);
}

/**
 * `status --follow`: prints the status again on every change the gateway reports (long-poll, at most
 * once a second), until every file is complete (exit 0) or one failed or the event ended (exit 1).
 */
async function followStatus(api: ApiClient, id: string, json: boolean): Promise<void> {
  for (let lastPrint = 0; ; ) {
    const local = await localStatus(new Queue(id));
    const event = await api.getEvent(id);
    if (json) process.stdout.write(JSON.stringify({ ...event, local }) + '\n');
    else {
      if (lastPrint) print('');
      printStatus(event, local);
    }
    lastPrint = Date.now();
    const files = event.files.filter((f) => f.state !== 'removed');
    if (event.state === 'expired' || event.state === 'deleted') throw new UserError(`the event is ${event.state}`);
    const failed = files.filter((f) => f.state === 'failed');
    if (files.every((f) => f.state === 'complete' || f.state === 'failed')) {
      if (failed.length) throw new UserError(`${failed.length} file(s) failed: ${failed.map((f) => f.path).join(', ')}`);
      return;
    }
    await api.waitForChange(id, 25);
    const pause = 1000 - (Date.now() - lastPrint);
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
  }
}

export function registerStatusCommand(program: Command): void {
  withConnection(program.command('status [event]'))
    .description("the event's per-file states and bytes on the gateway, and the local background upload (restarted when it died)")
    .option('--json', 'print JSON (with --follow: one JSON object per line)')
    .option('--follow', 'keep printing on every change until every file is complete (exit 0) or one failed (exit 1)')
    .action(async (id: string | undefined, opts: ConnOptions & { follow?: boolean }) => {
      const api = await client(opts);
      if (opts.follow) {
        if (!id) throw new UsageError('--follow needs an event: handoff status EVENT --follow');
        return followStatus(api, eventArg(id), Boolean(opts.json));
      }
      if (id) return oneStatus(api, eventArg(id), Boolean(opts.json));
      const queues = await listQueues();
      const withTimes = await Promise.all(queues.map(async (q) => ({ q, s: await q.read() })));
      const recent = withTimes.filter((x) => x.s).sort((a, b) => b.s!.uploader.updatedAt - a.s!.uploader.updatedAt);
      if (recent.length === 0) {
        if (opts.json) printJson([]);
        else print('no local uploads; "handoff ls" lists your events');
        return;
      }
      if (opts.json) {
        const out = [];
        for (const { q } of recent) out.push({ ...(await api.getEvent(q.eventId).catch(() => ({ id: q.eventId }))), local: await localStatus(q) });
        printJson(out);
        return;
      }
      for (const { q } of recent) {
        const local = await localStatus(q);
        const e = await api.getEvent(q.eventId).catch((err: Error) => err);
        if (e instanceof Error) print(`event ${q.eventId}: ${e.message}; uploader: ${local.state}`);
        else printStatus(e, local);
      }
    });
}

export type { FileInfo };
