import { createHash, randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Database } from '../db/Database.js';
import { AdminSessionsRepo, type AdminSessionRow } from '../db/repos/adminSessions.js';

export interface SessionPolicy {
  /** Idle limit of a signed-in session (ASVS 3.3.2: 30 min). */
  idleMs: number;
  /** Absolute limit from login (ASVS 3.3.2: 12 h). */
  absoluteMs: number;
  /** Pre-login sessions only carry the login form's CSRF token: short-lived. */
  anonymousMs: number;
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
  idHash: string;
  userId: number | null;
  csrf: string;
  createdAt: number;
  flash: Flash | null;
}

declare module 'express-serve-static-core' {
  interface Request {
    adminSession?: AdminSession;
  }
}

const hashId = (id: string) => createHash('sha256').update(id).digest('hex');
const TOUCH_EVERY_MS = 15_000;
const SWEEP_EVERY_MS = 60_000;

/**
 * Server-side sessions in the database (not a memory store), written here rather than with
 * express-session: we want the id hashed at rest, an absolute limit besides the idle one, one
 * CSRF token per session, rotation on login and no cookie-signing secret to manage; that is
 * ~100 lines over our own Database, where express-session would need a custom store anyway.
 */
export class SessionStore {
  private readonly repo: AdminSessionsRepo;
  private lastSweep = 0;

  constructor(db: Database, readonly policy: SessionPolicy, private readonly now: () => number = Date.now) {
    this.repo = new AdminSessionsRepo(db);
  }

  get cookieName(): string {
    return this.policy.secure ? '__Host-handoff-admin' : 'handoff-admin';
  }

  /** A fresh session with a new 256-bit id and CSRF token; `userId` null before login. */
  async create(userId: number | null, ip: string | null): Promise<AdminSession> {
    await this.maybeSweep();
    const now = this.now();
    const id = randomBytes(32).toString('base64url');
    const row: AdminSessionRow = {
      id_hash: hashId(id), user_id: userId, csrf_token: randomBytes(32).toString('base64url'), created_at: now, last_seen_at: now,
      expires_at: now + (userId === null ? this.policy.anonymousMs : this.policy.absoluteMs), flash: null, ip,
    };
    await this.repo.insert(row);
    return this.toSession(id, row);
  }

  /** The live session for a cookie value, or null (unknown, idle too long, past its absolute limit). */
  async load(id: string, touch = true): Promise<AdminSession | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    const row = await this.repo.byHash(hashId(id));
    if (!row) return null;
    const now = this.now();
    const idle = row.user_id === null ? this.policy.anonymousMs : this.policy.idleMs;
    if (row.expires_at <= now || row.last_seen_at + idle <= now) {
      await this.repo.remove(row.id_hash);
      return null;
    }
    if (touch && now - row.last_seen_at >= TOUCH_EVERY_MS) await this.repo.touch(row.id_hash, now);
    return this.toSession(id, row);
  }

  async destroy(s: AdminSession): Promise<void> {
    await this.repo.remove(s.idHash);
  }

  /** Ends every session of an account (password reset, disable, removal), optionally but one. */
  destroyForUser(userId: number, except?: AdminSession): Promise<number> {
    return this.repo.removeForUser(userId, except?.idHash ?? null);
  }

  async setFlash(s: AdminSession, flash: Flash | null): Promise<void> {
    s.flash = flash;
    await this.repo.setFlash(s.idHash, flash ? JSON.stringify(flash) : null);
  }

  /** Expired rows are dropped at most once a minute, on the next session created. */
  async maybeSweep(): Promise<void> {
    const now = this.now();
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    await this.repo.sweep(now, now - this.policy.idleMs, now - this.policy.anonymousMs);
  }

  private toSession(id: string, row: AdminSessionRow): AdminSession {
    let flash: Flash | null = null;
    try {
      flash = row.flash ? (JSON.parse(row.flash) as Flash) : null;
    } catch {
      flash = null;
    }
    return { id, idHash: row.id_hash, userId: row.user_id, csrf: row.csrf_token, createdAt: row.created_at, flash };
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

  /** Loads the session named by the cookie into req.adminSession (absent if none or dead). */
  middleware() {
    return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
      try {
        const id = readCookie(req.headers.cookie, this.cookieName);
        const s = id ? await this.load(id) : null;
        if (s) req.adminSession = s;
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
