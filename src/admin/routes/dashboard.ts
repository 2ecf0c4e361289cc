import type { Router } from 'express';
import { me, page, type AdminContext } from '../context.js';
import { pageParam, pager } from '../render.js';

const EVENTS_PER_PAGE = 25;

/** GET / : events with their counts, storage, transfers in flight, recent failed logins and bans. */
export function registerDashboardRoutes(r: Router, ctx: AdminContext): void {
  r.get('/', page(ctx, async (req, res) => {
    const p = pageParam(req);
    const events = await ctx.reports.eventSummaries(me(req), EVENTS_PER_PAGE, (p - 1) * EVENTS_PER_PAGE);
    const storage = await ctx.reports.storage(me(req));
    const transfers = ctx.reports.transfers(me(req));
    const now = Date.now();
    const bans = (await ctx.lockout.list()).filter((l) => l.bannedUntil !== null && l.bannedUntil > now).slice(0, 20);
    await ctx.render.page(req, res, 'dashboard', {
      title: 'Dashboard',
      events: events.items,
      total: events.total,
      pager: pager(req, events.total, EVENTS_PER_PAGE, p),
      storage,
      transfers,
      failures: ctx.recentFailures.list(15),
      bans,
    });
  }));
}
