import type { NextFunction, Request, Response } from 'express';
import type { Accounts } from '../auth/Accounts.js';
import type { Authenticator } from '../auth/Authenticator.js';
import type { Lockout } from '../auth/lockout.js';
import type { Principal, RequestContext } from '../auth/principal.js';
import type { RecentAuthFailures } from '../auth/recentFailures.js';
import type { EventService } from '../cache/EventService.js';
import type { DomainBus } from '../cache/events.js';
import type { Reports } from '../cache/Reports.js';
import type { Database } from '../db/Database.js';
import { GatewayError, isGatewayError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { Renderer } from './render.js';
import type { Flash, SessionStore } from './sessions.js';

/** What the panel is built from (gateway.ts passes it in). Only the session store touches `db`. */
export interface AdminDeps {
  db: Database;
  auth: Authenticator;
  accounts: Accounts;
  events: EventService;
  reports: Reports;
  lockout: Lockout;
  recentFailures: RecentAuthFailures;
  bus: DomainBus;
  log: Logger;
  publicUrl: () => string;
  secure: boolean;
  /** Folder holding views/ and static/. */
  assetsDir: string;
  idleMs: number;
  absoluteMs: number;
}

export interface AdminContext extends AdminDeps {
  sessions: SessionStore;
  render: Renderer;
  /** Open server-sent-event streams, ended when the gateway stops. */
  streams: Set<Response>;
}

export function ctxOf(req: Request): RequestContext {
  return { protocol: 'admin', ip: req.socket.remoteAddress ?? 'unknown' };
}

export function me(req: Request): Principal {
  return req.principal!;
}

export function field(req: Request, name: string, max = 4096): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  if (typeof v !== 'string') return '';
  if (v.length > max) throw new GatewayError('bad_request', `${name} is too long`);
  return v;
}

type Handler = (req: Request, res: Response) => Promise<void>;

/** GET pages: any error becomes the panel's error page. */
export function page(ctx: AdminContext, fn: Handler) {
  return (req: Request, res: Response, next: NextFunction) => fn(req, res).catch((err) => ctx.render.error(req, res, err).catch(next));
}

/**
 * Form actions: the handler returns a flash message (Post/Redirect/Get back to `back`) or renders
 * itself (one-time secrets are rendered, never redirected, so they touch neither URL nor database).
 * A refused action (4xx) returns to the page with its message; anything else is an error page.
 */
export function action(ctx: AdminContext, back: (req: Request) => string, fn: (req: Request, res: Response) => Promise<Flash | null>) {
  return (req: Request, res: Response, next: NextFunction) => {
    const done = (flash: Flash | null) => {
      if (res.headersSent) return;
      const s = req.adminSession;
      const go = () => res.redirect(303, back(req));
      if (s && flash) ctx.sessions.setFlash(s, flash).then(go, next);
      else go();
    };
    fn(req, res).then(done, (err: unknown) => {
      if (isGatewayError(err) && err.code !== 'internal' && err.code !== 'storage_full' && err.code !== 'not_found') done({ kind: 'error', text: err.message });
      else ctx.render.error(req, res, err).catch(next);
    });
  };
}
