import { createHash } from 'node:crypto';
import type { Database } from '../db/Database.js';
import { UsersRepo } from '../db/repos/users.js';
import { RecipientsRepo } from '../db/repos/recipients.js';
import type { RecipientRow, UserRow } from '../db/repos/rows.js';
import { hashToken } from '../shared/ids.js';
import type { DomainBus } from '../cache/events.js';
import { CredentialCache } from './credentialCache.js';
import { Lockout } from './lockout.js';
import { MAX_SECRET_BYTES, PasswordHasher } from './passwords.js';
import type { Principal, RequestContext } from './principal.js';

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: 'invalid' | 'locked' };

/**
 * The single authenticator for every protocol: password (Basic, SFTP, admin form), API token and
 * SSH public key. Account state (disabled, revoked, expired) is read fresh on every call, so the
 * credential cache only ever saves the hash, never a decision that may have changed since.
 */
export class Authenticator {
  private readonly users: UsersRepo;
  private readonly recipients: RecipientsRepo;

  constructor(
    private readonly db: Database,
    readonly hasher: PasswordHasher,
    readonly cache: CredentialCache,
    readonly lockout: Lockout,
    private readonly bus: DomainBus,
  ) {
    this.users = new UsersRepo(db);
    this.recipients = new RecipientsRepo(db);
  }

  private async fail(ctx: RequestContext, username: string | undefined, weight: number): Promise<AuthResult> {
    await this.lockout.recordFailure(ctx.ip, username, weight);
    this.bus.emit({ type: 'auth.failed', at: Date.now(), username: username ?? null, protocol: ctx.protocol, ip: ctx.ip });
    return { ok: false, reason: 'invalid' };
  }

  /** Attempts while locked out keep scoring against the address, so a banned name does not shield it. */
  private async locked(ctx: RequestContext, username?: string): Promise<boolean> {
    if (!(await this.lockout.isBanned(ctx.ip, username))) return false;
    await this.lockout.recordFailure(ctx.ip, undefined, 1);
    return true;
  }

  async password(username: string, secret: string, ctx: RequestContext): Promise<AuthResult> {
    if (await this.locked(ctx, username)) return { ok: false, reason: 'locked' };
    if (Buffer.byteLength(secret) > MAX_SECRET_BYTES || username.length > 256 || username.length === 0) {
      return this.fail(ctx, username.slice(0, 256) || undefined, 1);
    }
    const user = await this.users.byName(username);
    const recipient = user ? undefined : await this.recipients.byUsername(username);
    const subject = user ? `user:${user.id}` : recipient ? `recipient:${recipient.id}` : null;
    const stored = user?.password_hash ?? recipient?.password_hash ?? null;
    if (!subject || !stored) {
      await this.hasher.dummyVerify(secret);
      return this.fail(ctx, username, 2);
    }
    if (!(await this.cache.verified(subject, stored, secret, () => this.hasher.verify(stored, secret)))) return this.fail(ctx, username, 1);
    const principal = user ? this.userPrincipal(user) : await this.recipientPrincipal(recipient!);
    if (!principal) return this.refuse(ctx, username);
    return { ok: true, principal };
  }

  /**
   * The right secret of a disabled, revoked or expired credential: refused, but not scored. It is
   * no guess, and a download manager retrying an expired link must not ban its whole office NAT.
   */
  private refuse(ctx: RequestContext, username: string): AuthResult {
    this.bus.emit({ type: 'auth.failed', at: Date.now(), username, protocol: ctx.protocol, ip: ctx.ip });
    return { ok: false, reason: 'invalid' };
  }

  async token(token: string, ctx: RequestContext): Promise<AuthResult> {
    if (await this.locked(ctx)) return { ok: false, reason: 'locked' };
    if (token.length > 256) return this.fail(ctx, undefined, 1);
    const user = await this.users.byTokenHash(hashToken(token));
    const principal = user ? this.userPrincipal(user) : null;
    if (!principal) return this.fail(ctx, undefined, 1);
    return { ok: true, principal };
  }

  /** Public-key login: the SFTP front-end has verified the signature; this decides who the key belongs to. */
  async publicKey(username: string, keyMatches: (storedKey: string) => boolean, ctx: RequestContext): Promise<AuthResult> {
    if (await this.locked(ctx, username)) return { ok: false, reason: 'locked' };
    const user = await this.users.byName(username);
    if (user) {
      const keys = await this.users.sshKeys(user.id);
      const principal = keys.some((k) => keyMatches(k.public_key)) ? this.userPrincipal(user) : null;
      return principal ? { ok: true, principal } : this.fail(ctx, username, 1);
    }
    const recipient = await this.recipients.byUsername(username);
    if (!recipient?.ssh_public_key || !keyMatches(recipient.ssh_public_key)) return this.fail(ctx, username, 1);
    const principal = await this.recipientPrincipal(recipient);
    if (!principal) return this.refuse(ctx, username);
    return { ok: true, principal };
  }

  /**
   * SSH "would you accept this key?" query: answers without recording a failure (clients offer their
   * keys one by one before signing with one). The signed attempt then goes through `publicKey`.
   */
  async publicKeyKnown(username: string, keyMatches: (storedKey: string) => boolean, ctx: RequestContext): Promise<boolean> {
    if (await this.lockout.isBanned(ctx.ip, username)) return false;
    const user = await this.users.byName(username);
    if (user) return (await this.users.sshKeys(user.id)).some((k) => keyMatches(k.public_key));
    const recipient = await this.recipients.byUsername(username);
    return Boolean(recipient?.ssh_public_key && keyMatches(recipient.ssh_public_key));
  }


  /**
   * The account behind a server-side session (admin panel), read fresh: null once disabled or
   * removed. `credentialTag` changes with the password, however it was changed (panel or CLI), so
   * a session opened before a password change can be told apart and ended.
   */
  async sessionAccount(userId: number): Promise<{ principal: Principal; credentialTag: string } | null> {
    const u = await this.users.byId(userId);
    const principal = u ? this.userPrincipal(u) : null;
    if (!u || !principal) return null;
    return { principal, credentialTag: createHash('sha256').update(`session:${u.password_hash ?? ''}`).digest('hex').slice(0, 32) };
  }

  private userPrincipal(user: UserRow): Principal | null {
    if (user.disabled) return null;
    return { kind: user.role, id: user.id, name: user.name };
  }

  private async recipientPrincipal(r: RecipientRow, now = Date.now()): Promise<Principal | null> {
    if (r.revoked_at !== null || r.expired_at !== null) return null;
    if (r.expires_at !== null && r.expires_at <= now) return null;
    // Event rows outlive their recipients (tombstones; pruning cascades to recipients), so no lookup here:
    // an expired or purged event still authenticates its recipient and the front-end answers 410.
    return { kind: 'recipient', id: r.id, name: r.username, eventId: r.event_id };
  }
}

