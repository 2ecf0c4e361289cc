import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { join } from 'node:path';
import { GatewayError } from '../shared/errors.js';
import type { AdminContext, AdminDeps } from './context.js';
import { csrfGuard } from './csrf.js';
import { Renderer } from './render.js';
import { registerAccountRoutes } from './routes/accounts.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerEventRoutes } from './routes/events.js';
import { registerLoginRoutes, requireAdmin } from './routes/login.js';
import { securityHeaders } from './security.js';
import { SessionStore } from './sessions.js';

/**
 * The admin panel at /admin: server-rendered (works without JavaScript), sessions in the database,
 * one CSRF guard in front of every route, only accounts with role admin past the login page.
 * Every route sits on this one router, so tests can enumerate them from `router.stack`.
 */
export interface AdminPanel {
  router: Router;
  /** Ends the live streams so a stopping server does not wait for open event pages. */
  close(): void;
}

export function adminPanel(deps: AdminDeps): AdminPanel {
  const sessions = new SessionStore(deps.db, { idleMs: deps.idleMs, absoluteMs: deps.absoluteMs, secure: deps.secure });
  const render = new Renderer(join(deps.assetsDir, 'views'), sessions, deps.log);
  const ctx: AdminContext = { ...deps, sessions, render, streams: new Set() };
  const r = express.Router();

  r.use(securityHeaders(deps.secure));
  r.use('/static', express.static(join(deps.assetsDir, 'static'), { index: false, fallthrough: false, maxAge: 0 }));
  r.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 50 }));
  r.use(sessions.middleware());
  r.use(
    csrfGuard(deps.publicUrl, (req, res) => {
      void render.error(req, res, new GatewayError('forbidden', 'This form has expired or did not come from this panel. Reload the page and try again.'));
    }),
  );
  registerLoginRoutes(r, ctx);
  r.use(requireAdmin(ctx));
  registerDashboardRoutes(r, ctx);
  registerEventRoutes(r, ctx);
  registerAccountRoutes(r, ctx);

  r.use((req: Request, res: Response, next: NextFunction) => render.error(req, res, new GatewayError('not_found', 'No such page.')).catch(next));
  r.use((err: unknown, req: Request, res: Response, next: NextFunction) => render.error(req, res, fromMiddleware(err)).catch(next));
  return {
    router: r,
    close: () => {
      for (const res of ctx.streams) res.end();
      ctx.streams.clear();
    },
  };
}

/** Errors of express middleware (body parser, static files) carry an HTTP status; map them to our codes. */
function fromMiddleware(err: unknown): unknown {
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status !== 'number' || status < 400 || status >= 500) return err;
  if (status === 404) return new GatewayError('not_found', 'No such page.');
  if (status === 413) return new GatewayError('too_large', 'The form is too large.');
  return new GatewayError('bad_request', 'The request could not be read.');
}

/** Method and path of every route of the panel router, for the CSRF coverage test. */
export function listRoutes(router: Router): Array<{ method: string; path: string }> {
  const out: Array<{ method: string; path: string }> = [];
  for (const layer of router.stack) {
    const route = layer.route as { path: string; methods: Record<string, boolean> } | undefined;
    if (!route) continue;
    for (const [method, on] of Object.entries(route.methods)) if (on && method !== '_all') out.push({ method: method.toUpperCase(), path: route.path });
  }
  return out;
}
