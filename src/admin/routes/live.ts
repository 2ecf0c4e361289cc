import type { Request, Response } from 'express';
import type { DomainEvent } from '../../cache/events.js';
import { me, type AdminContext } from '../context.js';
import { progressLabel } from '../render.js';

const HEARTBEAT_MS = 15_000;

/**
 * Server-sent events for one event page: file state changes and (throttled) upload progress from
 * the DomainBus, as JSON the page's script copies into the manifest with textContent. The stream
 * ends when the client goes, or at a heartbeat once the session is no longer valid (heartbeats
 * do not count as activity, so an open page does not defeat the idle timeout).
 */
export async function serveLive(ctx: AdminContext, req: Request, res: Response, eventId: string): Promise<void> {
  await ctx.reports.eventHeader(me(req), eventId); // visibility, 404 otherwise
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.write('retry: 3000\n\n');
  const send = (data: unknown, event?: string) => res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
  const off = ctx.bus.on((e: DomainEvent) => {
    if (!('eventId' in e) || e.eventId !== eventId) return;
    if (e.type === 'file.progress') send({ path: e.path, state: 'uploading', bytes: e.bytes, size: e.size, label: progressLabel({ state: 'uploading', bytes: e.bytes, size: e.size }) });
    else if (e.type === 'file.state') send({ path: e.path, state: e.state, bytes: e.bytes, size: e.size, label: progressLabel(e) });
    else if (e.type === 'event.closed' || e.type === 'event.deleted') send({ type: e.type }, 'event');
  });
  const session = req.adminSession!;
  const beat = setInterval(() => {
    ctx.sessions.load(session.id, false).then(
      (s) => (s ? res.write(': keep-alive\n\n') : res.end()),
      () => res.end(),
    );
  }, HEARTBEAT_MS);
  beat.unref();
  ctx.streams.add(res);
  const stop = () => {
    clearInterval(beat);
    off();
    ctx.streams.delete(res);
  };
  res.on('close', stop);
  req.on('close', stop);
}
