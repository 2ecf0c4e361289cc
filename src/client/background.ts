import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lockHolder } from './lock.js';
import { hasPendingWork, isTerminal, listQueues, Queue } from './queue.js';

const KEEP_FINISHED_MS = 30 * 86_400_000;

const mainScript = () => fileURLToPath(new URL('../main.js', import.meta.url));

/** Starts the uploader of one queue as a detached process that outlives the shell; its output goes to the queue's log. */
export async function spawnUploader(queue: Queue): Promise<number | undefined> {
  await queue.ensure();
  const log = openSync(queue.logFile, 'a', 0o600);
  try {
    const child = spawn(process.execPath, [mainScript(), '__uploader', queue.eventId], {
      detached: true,
      stdio: ['ignore', log, log],
      env: process.env,
      cwd: queue.dir,
    });
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/** Restarts the uploader of a queue with work left and nobody on it (killed, crashed, rebooted). */
export async function revive(queue: Queue): Promise<boolean> {
  if ((await lockHolder(queue.lockFile)) !== null) return false;
  if (!(await hasPendingWork(queue))) return false;
  await spawnUploader(queue);
  return true;
}

/** Every sender command calls this: a dead uploader with pending work comes back without asking. */
export async function reviveAll(): Promise<string[]> {
  const revived: string[] = [];
  for (const q of await listQueues()) {
    try {
      if (await revive(q)) revived.push(q.eventId);
      else await pruneFinished(q);
    } catch {
      /* a broken queue folder must not stop the command the user asked for */
    }
  }
  return revived;
}

/** A queue finished long ago only slows every command down: its folder goes after 30 days. */
async function pruneFinished(q: Queue): Promise<void> {
  const state = await q.read();
  if (!state || !state.files.every(isTerminal) || Date.now() - state.uploader.updatedAt < KEEP_FINISHED_MS) return;
  if ((await lockHolder(q.lockFile)) !== null || (await q.incoming()).length > 0) return;
  await rm(q.dir, { recursive: true, force: true });
}
