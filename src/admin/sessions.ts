import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Database } from '../db/Database.js';
import { AdminSessionsRepo, type AdminSessionRow } from '../db/repos/adminSessions.js';

export interface SessionPolicy {
  /** Idle limit of a signed-in session (ASVS 3.3.2: 30 min). */
  idleMs: number;
  /** Absolute limit from login (ASVS 3.3.2: 12 h). */
  absoluteMs: number;
  /** Secure cookie with the __Host- prefix (HTTPS, or a TLS-terminating proxy per publicUrl). */
  secure: boolean;
}

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface AdminSession {
  /** The cookie value: only in memory, never stored. */
  id: string;
  /** Null for a pre-login visitor: no row, nothing to destroy. */
  idHash: string | null;
  userId: number | null;
  /** The account's credential tag when the session was opened (see Authenticator.sessionAccount). */
  credentialTag: string | null;
  csrf: string;
  flash: Flash | null;
}

declare module 'express-serve-static-core' {
  interface Request {
    adminSession?: AdminSession;
  }
}

const ID = /^[A-Za-z0-9_-]{43}$/;
const hashId = (id: string) => createHash('sha256').update(id).digest('hex');
const newId = () => randomBytes(32).toString('base64url');
const TOUCH_EVERY_MS = 15_000;
const SWEEP_EVERY_MS = 60_000;

/**
 * Server-side sessions in the database (not a memory store), written here rather than with
 * express-session: we want the id hashed at rest, an absolute limit besides the idle one, one
 * CSRF token per session, rotation on login, no cookie-signing secret to rotate, and no row for
 * anonymous visitors (express-session would need a custom store and `saveUninitialized` care
 * anyway). A pre-login visitor gets a random cookie id and a login-form token derived from it
 * with an HMAC key kept in the database; signing in issues a brand-new id backed by a row.
 */
export class SessionStore {
  private readonly repo: AdminSessionsRepo;
  private lastSweep = 0;
  private key: Buffer | null = null;

  constructor(db: Database, readonly policy: SessionPolicy, private readonly now: () => number = Date.now) {
    this.repo = new AdminSessionsRepo(db);
  }

  get cookieName(): string {
    return this.policy.secure ? '__Host-handoff-admin' : 'handoff-admin';
  }

  /** A signed-in session with a new 256-bit id and CSRF token. */
  async create(userId: number, credentialTag: string, ip: string | null): Promise<AdminSession> {
    await this.maybeSweep();
    const now = this.now();
    const id = newId();
    const row: AdminSessionRow = {
      id_hash: hashId(id), user_id: userId, cred_tag: credentialTag, csrf_token: newId(), created_at: now, last_seen_at: now, expires_at: now + this.policy.absoluteMs, flash: null, ip,
    };
    await this.repo.insert(row);
    return this.toSession(id, row);
  }

  /** A pre-login visitor: a fresh id (or the one its cookie already carries) and its derived token. */
  async anonymous(id: string = newId()): Promise<AdminSession> {
    this.key ??= Buffer.from(await this.repo.secret('admin.login-csrf-key', () => randomBytes(32).toString('base64url')), 'base64url');
    const csrf = createHmac('sha256', this.key).update(`login:${id}`).digest('base64url');
    return { id, idHash: null, userId: null, credentialTag: null, csrf, flash: null };
  }

  /** The signed-in session for a cookie value, or null (unknown, idle too long, past its absolute limit). */
  async load(id: string, touch = true): Promise<AdminSession | null> {
    if (!ID.test(id)) return null;
    const row = await this.repo.byHash(hashId(id));
    if (!row) return null;
    const now = this.now();
    if (row.expires_at <= now || row.last_seen_at + this.policy.idleMs <= now) {
      await this.repo.remove(row.id_hash);
      return null;
    }
    if (touch && now - row.last_seen_at >= TOUCH_EVERY_MS) await this.repo.touch(row.id_hash, now);
    return this.toSession(id, row);
  }

  async destroy(s: AdminSession): Promise<void> {
    if (s.idHash) await this.repo.remove(s.idHash);
  }

  /** Ends every session of an account (password reset, disable, removal), optionally but one. */
  destroyForUser(userId: number, except?: AdminSession): Promise<number> {
    return this.repo.removeForUser(userId, except?.idHash ?? null);
  }

  /** Keeps a session valid across its own account's password change. */
  async retag(s: AdminSession, credentialTag: string): Promise<void> {
    if (!s.idHash) return;
    s.credentialTag = credentialTag;
    await this.repo.retag(s.idHash, credentialTag);
  }

  async setFlash(s: AdminSession, flash: Flash | null): Promise<void> {
    if (!s.idHash) return;
    s.flash = flash;
    await this.repo.setFlash(s.idHash, flash ? JSON.stringify(flash) : null);
  }

  /** Expired rows are dropped at most once a minute, on the next login. */
  async maybeSweep(): Promise<void> {
    const now = this.now();
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    await this.repo.sweep(now, now - this.policy.idleMs);
  }

  private toSession(id: string, row: AdminSessionRow): AdminSession {
    let flash: Flash | null = null;
    try {
      flash = row.flash ? (JSON.parse(row.flash) as Flash) : null;
    } catch {
      flash = null;
    }
    return { id, idHash: row.id_hash, userId: row.user_id, credentialTag: row.cred_tag, csrf: row.csrf_token, flash };
  }

  /** Set-Cookie value: HttpOnly, SameSite=Strict, Secure + __Host- behind TLS; a session cookie (no Max-Age). */
  cookie(value: string, clear = false): string {
    const parts = [`${this.cookieName}=${value}`, `Path=${this.policy.secure ? '/' : '/admin'}`, 'HttpOnly', 'SameSite=Strict'];
    if (this.policy.secure) parts.push('Secure');
    if (clear) parts.push('Max-Age=0');
    return parts.join('; ');
  }

  setCookie(res: Response, s: AdminSession): void {
    res.append('Set-Cookie', this.cookie(s.id));
  }

  clearCookie(res: Response): void {
    res.append('Set-Cookie', this.cookie('', true));
  }

  /**
   * req.adminSession: the signed-in session named by the cookie, else a pre-login one for the
   * cookie's id (a dead session's id only ever gets the login form), else none.
   */
  middleware() {
    return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
      try {
        const id = readCookie(req.headers.cookie, this.cookieName);
        if (id && ID.test(id)) req.adminSession = (await this.load(id)) ?? (await this.anonymous(id));
        next();
      } catch (err) {
        next(err);
      }
    };
  }
}

export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}
