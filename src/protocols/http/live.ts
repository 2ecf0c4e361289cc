import type { Request, Response } from 'express';
import type { Principal } from '../../auth/principal.js';
import type { EventService } from '../../cache/EventService.js';
import type { DomainBus, DomainEvent } from '../../cache/events.js';
import { hiddenFrom } from '../../cache/manifest.js';

const HEARTBEAT_MS = 15_000;

type LiveEvent = Extract<DomainEvent, { type: 'file.state' | 'file.progress' | 'event.completed' | 'event.deleted' }>;

function isLive(e: DomainEvent, eventId: string, principal: Principal): e is LiveEvent {
  if (!('eventId' in e) || e.eventId !== eventId) return false;
  if (e.type === 'file.state' || e.type === 'file.progress') return !hiddenFrom(principal, e.path);
  return e.type === 'event.completed' || e.type === 'event.deleted';
}

function payload(e: LiveEvent): Record<string, unknown> {
  switch (e.type) {
    case 'file.state':
      return { path: e.path, state: e.state, bytes: e.bytes, size: e.size };
    case 'file.progress':
      return { path: e.path, state: 'uploading', bytes: e.bytes, size: e.size };
    default:
      return { at: new Date(e.at).toISOString() };
  }
}

/**
 * Server-sent events for one transfer event: a `snapshot` of the manifest, then `file.state`,
 * `file.progress`, `event.completed` and `event.deleted` as they happen. Access was checked by the
 * caller through EventService.open.
 */
export async function streamChanges(req: Request, res: Response, deps: { events: EventService; bus: DomainBus }, principal: Principal, eventId: string): Promise<void> {
  const view = await deps.events.get(principal, eventId);
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Accel-Buffering', 'no');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.flushHeaders();
  const send = (type: string, data: unknown) => res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  send('snapshot', { state: view.state, completedAt: view.completedAt, files: view.files });
  const off = deps.bus.on((e) => {
    if (!isLive(e, eventId, principal)) return;
    send(e.type, payload(e));
    if (e.type === 'event.deleted') res.end();
  });
  const beat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
  await new Promise<void>((resolve) => {
    req.on('close', resolve);
    res.on('close', resolve);
  });
  clearInterval(beat);
  off();
}

/** Long-poll for scripts: answers on the next change to the event, or after `wait` seconds with changed=false. */
export async function waitForChange(req: Request, res: Response, deps: { events: EventService; bus: DomainBus }, principal: Principal, eventId: string): Promise<void> {
  const asked = Number(req.query.wait ?? 25);
  const wait = Math.min(Math.max(Number.isFinite(asked) ? asked : 25, 0), 60) * 1000;
  const changed = await new Promise<boolean>((resolve) => {
    const off = deps.bus.on((e) => {
      if (isLive(e, eventId, principal)) finish(true);
    });
    const timer = setTimeout(() => finish(false), wait);
    req.on('close', () => finish(false));
    function finish(v: boolean) {
      off();
      clearTimeout(timer);
      resolve(v);
    }
  });
  if (res.destroyed) return;
  res.setHeader('Cache-Control', 'no-store');
  res.json({ changed, event: await deps.events.get(principal, eventId) });
}
