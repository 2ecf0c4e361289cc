import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EventMount, loadFuse } from '../client/mount.js';
import { Queue } from '../client/queue.js';
import { print, UserError } from './io.js';
import { client, eventArg, withConnection, type ConnOptions } from './senderCommon.js';

async function isMounted(dir: string): Promise<boolean> {
  try {
    const mounts = await readFile('/proc/mounts', 'utf8');
    return mounts.split('\n').some((l) => l.split(' ')[1] === dir.replace(/ /g, '\\040'));
  } catch {
    return true; // no /proc: rely on signals only
  }
}

export function registerMountCommand(program: Command): void {
  withConnection(program.command('mount <event> <dir>'))
    .description('FUSE-mount an event: copies into DIR land in a local spool and upload in the background; reads come from the gateway')
    .action(async (id: string, dirArg: string, opts: ConnOptions) => {
      const eventId = eventArg(id);
      const dir = resolve(dirArg);
      const F = loadFuse();
      const api = await client(opts);
      const event = await api.getEvent(eventId);
      if (event.state !== 'open') print(`note: event ${eventId} is ${event.state}; writes will fail`);
      const queue = new Queue(eventId);
      await queue.ensure();
      if (!(await queue.read())) {
        await queue.write({
          version: 1, eventId, server: api.conn.server, token: api.conn.token, expiresAt: event.expiresAt, files: [],
          uploader: { pid: 0, state: 'finished', updatedAt: Date.now(), rate: 0 },
        });
      }
      const m = new EventMount(api, eventId, queue, F);
      try {
        await m.mount(dir);
      } catch (err) {
        throw new UserError(`cannot mount ${dir}: ${(err as Error).message}; is /dev/fuse there and fusermount installed (Debian: fuse3)?`);
      }
      print(`mounted ${eventId} at ${dir}; unmount with "fusermount -u ${dir}" or Ctrl-C (queued uploads go on in the background)`);
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = () => {
          if (stopping) return;
          stopping = true;
          clearInterval(watch);
          m.unmount().then(done, done);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        // Unmounted from outside (fusermount -u): end this process too.
        const watch = setInterval(() => void isMounted(dir).then((yes) => !yes && stop()), 1000);
      });
      print(`unmounted ${dir}`);
      // fuse-native keeps its native thread alive after an unmount from outside; nothing else is pending here.
      setTimeout(() => process.exit(0), 100).unref();
    });
}
