import type { NextFunction, Request, Response, Router } from 'express';
import { GatewayError } from '../../shared/errors.js';
import { action, ctxOf, field, page, type AdminContext } from '../context.js';
import { ADMIN_BASE, safeNext } from '../security.js';

const LOCKED = 'Too many failed sign-in attempts from this address or for this account. Sign-in is locked for a while: try again later, or ask another admin to clear the lockout.';

/** GET/POST /login and POST /logout: the only routes open to a visitor without a signed-in session. */
export function registerLoginRoutes(r: Router, ctx: AdminContext): void {
  const { sessions, render, auth } = ctx;

  r.get('/login', page(ctx, async (req, res) => {
    const next = safeNext(req.query.next);
    let s = req.adminSession;
    if (s?.userId != null && (await auth.principalForUser(s.userId))?.kind === 'admin') return void res.redirect(303, next);
    if (!s || s.userId !== null) {
      // A pre-login visitor: a cookie id and the login form's token derived from it, no database row.
      // Signing in replaces the id with a new one (session fixation, ASVS 3.2.1).
      if (s) await sessions.destroy(s);
      s = await sessions.anonymous();
      sessions.setCookie(res, s);
      req.adminSession = s;
    }
    await render.page(req, res, 'login', { title: 'Sign in', next, username: '', error: null });
  }));

  r.post('/login', page(ctx, async (req, res) => {
    const username = field(req, 'username', 256).trim();
    const password = field(req, 'password', 4096);
    const next = safeNext(field(req, 'next', 2048));
    const again = (status: number, error: string) => render.page(req, res, 'login', { title: 'Sign in', next, username, error }, status);
    if (!username || !password) return again(400, 'Enter a username and a password.');
    const result = await auth.password(username, password, ctxOf(req));
    if (!result.ok) return result.reason === 'locked' ? again(429, LOCKED) : again(401, 'Wrong username or password.');
    if (result.principal.kind !== 'admin') return again(403, 'This account may not use the admin panel (it is not an admin).');
    // Session fixation (ASVS 3.2.1): whatever id the browser had, the signed-in session gets a new id and token.
    if (req.adminSession) await sessions.destroy(req.adminSession);
    const fresh = await sessions.create(result.principal.id, ctxOf(req).ip);
    sessions.setCookie(res, fresh);
    res.redirect(303, next);
  }));

  r.post('/logout', action(ctx, () => `${ADMIN_BASE}/login`, async (req, res) => {
    if (req.adminSession) await sessions.destroy(req.adminSession);
    req.adminSession = undefined;
    sessions.clearCookie(res);
    return null;
  }));
}

/** Past this point a request needs a signed-in session of an account that is still an enabled admin. */
export function requireAdmin(ctx: AdminContext) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const s = req.adminSession;
      const principal = s?.userId != null ? await ctx.auth.principalForUser(s.userId) : null;
      if (principal?.kind === 'admin') {
        req.principal = principal;
        return next();
      }
      if (s && s.userId != null) {
        // The account was disabled, removed or is not an admin: its session ends here.
        await ctx.sessions.destroy(s);
        req.adminSession = undefined;
        ctx.sessions.clearCookie(res);
      }
      if (req.method === 'GET' || req.method === 'HEAD') return void res.redirect(303, `${ADMIN_BASE}/login?next=${encodeURIComponent(req.originalUrl)}`);
      await ctx.render.error(req, res, new GatewayError('unauthenticated', 'Sign in first.'));
    } catch (err) {
      next(err);
    }
  };
}
