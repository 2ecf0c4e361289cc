import type { NextFunction, Request, Response, Router } from 'express';
import { GatewayError } from '../../shared/errors.js';
import { action, ctxOf, field, page, type AdminContext } from '../context.js';
import type { Principal } from '../../auth/principal.js';
import { ADMIN_BASE, safeNext } from '../security.js';
import type { AdminSession } from '../sessions.js';

const LOCKED = 'Too many failed sign-in attempts from this address or for this account. Sign-in is locked for a while: try again later, or ask another admin to clear the lockout.';

/** GET/POST /login and POST /logout: the only routes open to a visitor without a signed-in session. */
export function registerLoginRoutes(r: Router, ctx: AdminContext): void {
  const { sessions, render, auth } = ctx;

  r.get('/login', page(ctx, async (req, res) => {
    const next = safeNext(req.query.next);
    let s = req.adminSession;
    if (s && (await signedInAdmin(ctx, s))) return void res.redirect(303, next);
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
    const account = await auth.sessionAccount(result.principal.id);
    if (!account) return again(401, 'Wrong username or password.');
    const fresh = await sessions.create(result.principal.id, account.credentialTag, ctxOf(req).ip);
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

/** The admin behind a signed-in session, if the account is still an enabled admin with the same password. */
async function signedInAdmin(ctx: AdminContext, s: AdminSession): Promise<Principal | null> {
  if (s.userId === null) return null;
  const account = await ctx.auth.sessionAccount(s.userId);
  if (!account || account.principal.kind !== 'admin' || account.credentialTag !== s.credentialTag) return null;
  return account.principal;
}

/** Past this point a request needs a signed-in session of an account that is still an enabled admin. */
export function requireAdmin(ctx: AdminContext) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const s = req.adminSession;
      const principal = s ? await signedInAdmin(ctx, s) : null;
      if (principal) {
        req.principal = principal;
        return next();
      }
      if (s && s.userId != null) {
        // The account was disabled, removed, got a new password or is not an admin: its session ends here.
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
