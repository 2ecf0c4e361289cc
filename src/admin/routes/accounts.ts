import type { Request, Response, Router } from 'express';
import type { Role } from '../../db/repos/rows.js';
import { GatewayError } from '../../shared/errors.js';
import { parseDuration } from '../../shared/duration.js';
import { action, field, me, page, type AdminContext } from '../context.js';
import { pageParam, pager } from '../render.js';
import { ADMIN_BASE } from '../security.js';

const USERS_PER_PAGE = 50;
const LOCKOUTS_PER_PAGE = 100;
const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tib: 2 ** 40 };

/** "500 MiB", "2G", "1073741824" → bytes; empty → null (no cap). */
export function parseSize(text: string): number | null {
  const t = text.trim();
  if (t === '') return null;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(t);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new GatewayError('bad_request', 'Sizes look like 500 MiB, 20 GiB or a number of bytes.');
  return Math.round(Number(m[1]) * unit);
}

const userUrl = (req: Request) => `${ADMIN_BASE}/users/${encodeURIComponent(String(req.params.name))}`;
const usersUrl = () => `${ADMIN_BASE}/users`;

/** Accounts (senders and admins), their passwords, API tokens and limits; and the lockout list. */
export function registerAccountRoutes(r: Router, ctx: AdminContext): void {
  const { accounts, render, sessions } = ctx;

  const showUsers = async (req: Request, res: Response, issued: { name: string; password: string } | null = null) => {
    const p = pageParam(req);
    const total = await accounts.count();
    const users = await accounts.list({ limit: USERS_PER_PAGE, offset: (p - 1) * USERS_PER_PAGE });
    await render.page(req, res, 'users', { title: 'Accounts', users, total, pager: pager(req, total, USERS_PER_PAGE, p), issued }, issued ? 201 : 200);
  };
  const showUser = async (req: Request, res: Response, issued: { kind: 'password' | 'token'; secret: string } | null = null) => {
    const name = String(req.params.name);
    const account = await accounts.get(name);
    const tokens = await accounts.tokens(name);
    await render.page(req, res, 'user', { title: `Account ${name}`, account, tokens, issued, self: name === me(req).name }, issued ? 201 : 200);
  };
  /** An admin cannot lock themself out of the panel by accident; another admin can. */
  const notSelf = (req: Request, what: string) => {
    if (String(req.params.name) === me(req).name) throw new GatewayError('conflict', `You cannot ${what} the account you are signed in with.`);
  };
  const endSessions = async (name: string, keep?: Request) => {
    const u = await accounts.require(name);
    await sessions.destroyForUser(u.id, keep?.adminSession);
  };

  r.get('/users', page(ctx, (req, res) => showUsers(req, res)));
  r.post('/users', action(ctx, usersUrl, async (req, res) => {
    const role = field(req, 'role', 16) as Role;
    const password = field(req, 'password', 4096);
    const { account, password: generated } = await accounts.add(field(req, 'name', 64).trim(), role, password === '' ? undefined : password);
    if (generated) {
      await showUsers(req, res, { name: account.name, password: generated });
      return null;
    }
    return { kind: 'ok', text: `Created ${account.role} ${account.name}.` };
  }));

  r.get('/users/:name', page(ctx, (req, res) => showUser(req, res)));
  r.post('/users/:name/disable', action(ctx, userUrl, async (req) => {
    notSelf(req, 'disable');
    await accounts.setDisabled(String(req.params.name), true);
    await endSessions(String(req.params.name));
    return { kind: 'ok', text: 'Account disabled: its logins, tokens and sessions stop working.' };
  }));
  r.post('/users/:name/enable', action(ctx, userUrl, async (req) => {
    await accounts.setDisabled(String(req.params.name), false);
    return { kind: 'ok', text: 'Account enabled.' };
  }));
  r.post('/users/:name/password', action(ctx, userUrl, async (req, res) => {
    const name = String(req.params.name);
    const secret = (await accounts.setPassword(name))!;
    // Sessions opened with the old password end (their credential tag no longer matches anyway);
    // an admin who resets their own password keeps the session they did it from.
    const self = name === me(req).name;
    await endSessions(name, self ? req : undefined);
    if (self && req.adminSession) await sessions.retag(req.adminSession, (await ctx.auth.sessionAccount(me(req).id))!.credentialTag);
    await showUser(req, res, { kind: 'password', secret });
    return null;
  }));
  r.post('/users/:name/remove', action(ctx, usersUrl, async (req) => {
    notSelf(req, 'remove');
    const name = String(req.params.name);
    await endSessions(name);
    await accounts.remove(name);
    return { kind: 'ok', text: `Removed ${name} (an account that owns events is disabled instead, so their audit trail stays).` };
  }));
  r.post('/users/:name/tokens', action(ctx, userUrl, async (req, res) => {
    const secret = await accounts.createToken(String(req.params.name));
    await showUser(req, res, { kind: 'token', secret });
    return null;
  }));
  r.post('/users/:name/tokens/revoke', action(ctx, userUrl, async (req) => {
    const id = Number(field(req, 'token', 16));
    if (!Number.isSafeInteger(id)) throw new GatewayError('bad_request', 'No token given.');
    await accounts.revokeToken(String(req.params.name), id);
    return { kind: 'ok', text: 'Token revoked.' };
  }));
  r.post('/users/:name/limits', action(ctx, userUrl, async (req) => {
    const ttl = field(req, 'maxTtl', 32).trim();
    const maxTtlMs = ttl === '' ? null : parseDuration(ttl);
    if (maxTtlMs === null && ttl !== '') throw new GatewayError('bad_request', 'A lifetime looks like 30d, 12h or 2w.');
    await accounts.setLimits(String(req.params.name), { quotaBytes: parseSize(field(req, 'quota', 32)), maxTtlMs });
    return { kind: 'ok', text: 'Limits saved; they apply to events created or extended from now on.' };
  }));

  r.get('/lockouts', page(ctx, async (req, res) => {
    const now = Date.now();
    const p = pageParam(req);
    const all = await ctx.lockout.list();
    const rows = all.slice((p - 1) * LOCKOUTS_PER_PAGE, p * LOCKOUTS_PER_PAGE).map((l) => ({ ...l, banned: l.bannedUntil !== null && l.bannedUntil > now }));
    await render.page(req, res, 'lockouts', {
      title: 'Lockouts', rows, total: all.length, pager: pager(req, all.length, LOCKOUTS_PER_PAGE, p), failures: ctx.recentFailures.list(50),
    });
  }));
  r.post('/lockouts/clear', action(ctx, () => `${ADMIN_BASE}/lockouts`, async (req) => {
    const key = field(req, 'key', 300);
    const n = await ctx.lockout.clear(key || undefined);
    return { kind: 'ok', text: key ? `Cleared ${key}.` : `Cleared ${n} entries.` };
  }));
}
