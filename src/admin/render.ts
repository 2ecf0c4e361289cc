import ejs from 'ejs';
import type { Request, Response } from 'express';
import { join } from 'node:path';
import { HTTP_STATUS } from '../protocols/http/errors.js';
import { toGatewayError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { ADMIN_BASE } from './security.js';
import type { SessionStore } from './sessions.js';

import { formatBytes } from '../shared/format.js';
export { formatBytes };

/** ISO time → "2026-12-01 21:57 UTC"; the ISO value goes into <time datetime>. */
export function formatTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '—';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms} ms`;
}

export function progressLabel(f: { state: string; bytes: number; size: number | null }): string {
  if (f.state === 'complete') return formatBytes(f.size);
  if (f.state !== 'uploading') return f.size === null ? '—' : `0 of ${formatBytes(f.size)}`;
  const pct = f.size ? ` (${Math.floor((100 * f.bytes) / f.size)}%)` : '';
  return `${formatBytes(f.bytes)} of ${formatBytes(f.size)}${pct}`;
}

export const fmt = { bytes: formatBytes, time: formatTime, duration: formatDuration, progress: progressLabel };

export interface Pager {
  page: number;
  pages: number;
  prev: string | null;
  next: string | null;
}

/** Page links keep the other query parameters; `page` is 1-based. */
export function pager(req: Request, total: number | null, size: number, page: number, hasMore?: boolean): Pager {
  const pages = total === null ? page + (hasMore ? 1 : 0) : Math.max(1, Math.ceil(total / size));
  const link = (p: number) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query)) if (k !== 'page' && typeof v === 'string' && v !== '') q.set(k, v);
    q.set('page', String(p));
    return `${req.baseUrl}${req.path}?${q.toString()}`;
  };
  return { page, pages, prev: page > 1 ? link(page - 1) : null, next: page < pages ? link(page + 1) : null };
}

export function pageParam(req: Request): number {
  const n = Number(req.query.page);
  return Number.isSafeInteger(n) && n >= 1 && n <= 1_000_000 ? n : 1;
}

/**
 * Renders a view with the panel's common data. User data reaches templates only as values and
 * is printed with `<%=` (escaped); `<%-` is used for include() alone (a unit test checks).
 */
export class Renderer {
  constructor(private readonly viewsDir: string, private readonly sessions: SessionStore, private readonly log: Logger) {}

  async page(req: Request, res: Response, view: string, data: Record<string, unknown>, status = 200): Promise<void> {
    const s = req.adminSession;
    const flash = s?.flash ?? null;
    if (s && flash) await this.sessions.setFlash(s, null);
    const html = await ejs.renderFile(join(this.viewsDir, `${view}.ejs`), {
      base: ADMIN_BASE, csrf: s?.csrf ?? '', me: req.principal?.name ?? null, flash, fmt, title: 'Handoff admin', ...data,
    }, { cache: process.env.NODE_ENV === 'production' });
    res.status(status).type('html').send(html);
  }

  /** An HTML error page for the panel; internal details are logged, never shown. */
  async error(req: Request, res: Response, err: unknown): Promise<void> {
    const g = toGatewayError(err);
    if (g.code === 'internal' || g.code === 'storage_full') this.log.error({ err: g.cause ?? g, url: req.originalUrl }, g.message);
    if (res.headersSent) return void res.destroy();
    const status = HTTP_STATUS[g.code];
    if (g.code === 'rate_limited') res.setHeader('Retry-After', '60');
    await this.page(req, res, 'error', { title: `Error ${status}`, status, message: g.code === 'internal' ? 'Something went wrong on the server.' : g.message }, status);
  }
}
