import type { Request, Response, Router } from 'express';
import type { IssuedCredential } from '../../cache/EventService.js';
import { GatewayError } from '../../shared/errors.js';
import { isEventId } from '../../shared/ids.js';
import { action, ctxOf, field, me, page, type AdminContext } from '../context.js';
import { pageParam, pager } from '../render.js';
import { ADMIN_BASE } from '../security.js';
import { serveLive } from './live.js';

const FILES_PER_PAGE = 50;
const LOG_PER_PAGE = 50;

function eventId(req: Request): string {
  const id = String(req.params.id);
  if (!isEventId(id)) throw new GatewayError('not_found', 'No such event.');
  return id;
}

const eventUrl = (req: Request) => `${ADMIN_BASE}/events/${isEventId(String(req.params.id)) ? String(req.params.id) : ''}`;

function timeParam(v: unknown, endOfDay: boolean): number | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  const dayOnly = /^\d{4}-\d{2}-\d{2}$/.test(v);
  const t = Date.parse(dayOnly ? `${v}T00:00:00Z` : /Z|[+-]\d\d:\d\d$/.test(v) ? v : `${v}Z`);
  if (Number.isNaN(t)) throw new GatewayError('bad_request', 'Dates look like 2026-12-01 or 2026-12-01T10:30.');
  return dayOnly && endOfDay ? t + 86_400_000 : t;
}

/** The event page, its live progress stream, its access log and every action on the event. */
export function registerEventRoutes(r: Router, ctx: AdminContext): void {
  const { events, reports, render } = ctx;

  const showEvent = async (req: Request, res: Response, issued: IssuedCredential | null = null) => {
    const id = eventId(req);
    const p = pageParam(req);
    const event = await reports.eventHeader(me(req), id);
    const files = await reports.manifestPage(me(req), id, FILES_PER_PAGE, (p - 1) * FILES_PER_PAGE);
    const recipients = await reports.recipients(me(req), id);
    await render.page(req, res, 'event', {
      title: event.title || `Event ${id}`, event, files: files.items, fileTotal: files.total, fileComplete: files.complete,
      pager: pager(req, files.total, FILES_PER_PAGE, p), recipients, issued,
    }, issued ? 201 : 200);
  };

  r.get('/events/:id', page(ctx, (req, res) => showEvent(req, res)));
  r.get('/events/:id/live', page(ctx, (req, res) => serveLive(ctx, req, res, eventId(req))));

  r.get('/events/:id/log', page(ctx, async (req, res) => {
    const id = eventId(req);
    const p = pageParam(req);
    const q = req.query as Record<string, unknown>;
    const text = (k: string) => (typeof q[k] === 'string' ? (q[k] as string).slice(0, 256) : '');
    const filter = { who: text('who'), action: text('action'), protocol: text('protocol'), path: text('path'), since: text('since'), until: text('until') };
    const event = await reports.eventHeader(me(req), id);
    const log = await reports.accessLog(me(req), id, {
      who: filter.who || undefined, action: filter.action || undefined, protocol: filter.protocol || undefined, path: filter.path || undefined,
      since: timeParam(filter.since, false), until: timeParam(filter.until, true),
    }, LOG_PER_PAGE, (p - 1) * LOG_PER_PAGE);
    await render.page(req, res, 'log', { title: `Access log · ${event.title || id}`, event, entries: log.entries, filter, pager: pager(req, null, LOG_PER_PAGE, p, log.more) });
  }));

  r.post('/events/:id/extend', action(ctx, eventUrl, async (req) => {
    const expires = field(req, 'expires', 64).trim();
    if (!expires) throw new GatewayError('bad_request', 'Give a lifetime like 7d or a date like 2027-01-31.');
    const view = await events.update(me(req), eventId(req), { expires });
    return { kind: 'ok', text: `The event now expires ${view.expiresAt.slice(0, 16).replace('T', ' ')} UTC.` };
  }));
  r.post('/events/:id/close', action(ctx, eventUrl, async (req) => {
    await events.update(me(req), eventId(req), { closed: true });
    return { kind: 'ok', text: 'The event is closed: no more uploads or changes. Downloads go on.' };
  }));
  r.post('/events/:id/reopen', action(ctx, eventUrl, async (req) => {
    await events.update(me(req), eventId(req), { closed: false });
    return { kind: 'ok', text: 'The event is open for uploads again.' };
  }));
  r.post('/events/:id/delete', action(ctx, eventUrl, async (req) => {
    if (field(req, 'confirm') !== 'yes') throw new GatewayError('bad_request', 'Tick the box to confirm the deletion.');
    await events.delete(me(req), eventId(req));
    return { kind: 'ok', text: 'The event was deleted: its files are gone, its addresses answer 410.' };
  }));
  r.post('/events/:id/files/remove', action(ctx, eventUrl, async (req) => {
    const path = field(req, 'path');
    const session = await events.open(me(req), eventId(req), ctxOf(req));
    await session.remove(path, { recursive: false, kind: 'file' });
    return { kind: 'ok', text: `Removed ${path}.` };
  }));

  r.post('/events/:id/recipients', action(ctx, eventUrl, async (req, res) => {
    const max = field(req, 'maxDownloads', 16).trim();
    if (max && !/^\d{1,9}$/.test(max)) throw new GatewayError('bad_request', 'Maximum downloads is a whole number.');
    const { credential } = await events.addRecipient(me(req), eventId(req), {
      name: field(req, 'name', 64), sshPublicKey: field(req, 'sshPublicKey', 16384) || null, expires: field(req, 'expires', 64).trim() || null,
      maxDownloads: max ? Number(max) : null,
    });
    await showEvent(req, res, credential);
    return null;
  }));
  r.post('/events/:id/recipients/reset', action(ctx, eventUrl, async (req, res) => {
    const credential = await events.resetRecipientPassword(me(req), eventId(req), field(req, 'name', 64), ctxOf(req));
    await showEvent(req, res, credential);
    return null;
  }));
  r.post('/events/:id/recipients/revoke', action(ctx, eventUrl, async (req) => {
    const name = field(req, 'name', 64);
    await events.revokeRecipient(me(req), eventId(req), name);
    return { kind: 'ok', text: `${name} is revoked: their next request is refused.` };
  }));
}
