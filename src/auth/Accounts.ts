import type { Database } from '../db/Database.js';
import { UsersRepo } from '../db/repos/users.js';
import type { Role, UserRow } from '../db/repos/rows.js';
import { GatewayError } from '../shared/errors.js';
import { hashToken, newApiToken, newPassword } from '../shared/ids.js';
import type { CredentialCache } from './credentialCache.js';
import { PasswordHasher } from './passwords.js';
import { parsePublicKey } from './sshKeys.js';

const ACCOUNT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const MIN_PASSWORD = 12;

export interface AccountView {
  name: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
  /** Per-account caps on event size and lifetime; null: the gateway's limits apply. */
  quotaBytes: number | null;
  maxTtlMs: number | null;
}

export interface TokenView {
  id: number;
  createdAt: string;
  lastUsedAt: string | null;
  revoked: boolean;
}

/** Admin and sender accounts and their API tokens (server-side CLI, admin panel). */
export class Accounts {
  private readonly users: UsersRepo;
  constructor(private readonly db: Database, private readonly hasher: PasswordHasher, private readonly cache: CredentialCache) {
    this.users = new UsersRepo(db);
  }

  static view(u: UserRow): AccountView {
    return {
      name: u.name, role: u.role, disabled: Boolean(u.disabled), createdAt: new Date(u.created_at).toISOString(), quotaBytes: u.quota_bytes, maxTtlMs: u.max_ttl_ms,
    };
  }

  private checkPassword(password: string): void {
    if ([...password].length < MIN_PASSWORD) throw new GatewayError('bad_request', `passwords need at least ${MIN_PASSWORD} characters`);
    PasswordHasher.checkLength(password);
  }

  async require(name: string): Promise<UserRow> {
    const u = await this.users.byName(name);
    if (!u) throw new GatewayError('not_found', `no account named ${name}`);
    return u;
  }

  /** Creates an account; without a password one is generated and returned (shown once). */
  async add(name: string, role: Role, password?: string): Promise<{ account: AccountView; password: string | null }> {
    if (!ACCOUNT_NAME.test(name)) throw new GatewayError('bad_request', 'account names are 1-64 of a-z 0-9 . _ - (starting with a letter or digit)');
    if (role !== 'admin' && role !== 'sender') throw new GatewayError('bad_request', 'role must be admin or sender');
    const generated = password === undefined ? newPassword() : null;
    const secret = password ?? generated!;
    this.checkPassword(secret);
    const hash = await this.hasher.hash(secret);
    await this.db.transaction(async (tx) => {
      if (await tx.get('SELECT 1 AS x FROM users WHERE name = ?', [name])) throw new GatewayError('conflict', `account ${name} already exists`);
      if (await tx.get('SELECT 1 AS x FROM recipients WHERE username = ?', [name])) throw new GatewayError('conflict', `${name} is taken by a recipient`);
      await new UsersRepo(tx).insert(name, role, hash, Date.now());
    });
    return { account: Accounts.view(await this.require(name)), password: generated };
  }

  async setPassword(name: string, password?: string): Promise<string | null> {
    const u = await this.require(name);
    const generated = password === undefined ? newPassword() : null;
    const secret = password ?? generated!;
    this.checkPassword(secret);
    await this.users.setPassword(u.id, await this.hasher.hash(secret), Date.now());
    this.cache.forget(`user:${u.id}`);
    return generated;
  }

  async setDisabled(name: string, disabled: boolean): Promise<void> {
    const u = await this.require(name);
    await this.users.setDisabled(u.id, disabled, Date.now());
    this.cache.forget(`user:${u.id}`);
  }

  async list(page?: { limit: number; offset: number }): Promise<AccountView[]> {
    return (await this.users.list(page)).map(Accounts.view);
  }

  count(): Promise<number> {
    return this.users.count();
  }

  async get(name: string): Promise<AccountView> {
    return Accounts.view(await this.require(name));
  }

  /** Caps for events this account creates (EventService honours them); null removes a cap. */
  async setLimits(name: string, limits: { quotaBytes: number | null; maxTtlMs: number | null }): Promise<AccountView> {
    for (const [k, v] of Object.entries(limits)) {
      if (v !== null && (!Number.isSafeInteger(v) || v <= 0)) throw new GatewayError('bad_request', `${k} must be a positive whole number or empty`);
    }
    const u = await this.require(name);
    await this.users.setLimits(u.id, limits.quotaBytes, limits.maxTtlMs, Date.now());
    return this.get(name);
  }

  async tokens(name: string): Promise<TokenView[]> {
    const u = await this.require(name);
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return (await this.users.tokens(u.id)).map((t) => ({ id: t.id, createdAt: iso(t.created_at)!, lastUsedAt: iso(t.last_used_at), revoked: t.revoked_at !== null }));
  }

  async revokeToken(name: string, tokenId: number): Promise<void> {
    const u = await this.require(name);
    if ((await this.users.revokeToken(u.id, tokenId, Date.now())) !== 1) throw new GatewayError('not_found', 'no such active token');
  }

  async remove(name: string): Promise<void> {
    const u = await this.require(name);
    const owned = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM events WHERE owner_id = ?', [u.id]);
    if (owned && owned.n > 0) {
      // Events and their audit trail outlive the account: disable instead of deleting.
      await this.users.setDisabled(u.id, true, Date.now());
      await this.db.run('UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL', [Date.now(), u.id]);
    } else await this.users.remove(u.id);
    this.cache.forget(`user:${u.id}`);
  }

  async createToken(name: string): Promise<string> {
    const u = await this.require(name);
    const token = newApiToken();
    await this.users.insertToken(u.id, hashToken(token), Date.now());
    return token;
  }

  /** Adds an SSH public key for SFTP logins; returns its fingerprint. */
  async addSshKey(name: string, publicKey: string): Promise<string> {
    const u = await this.require(name);
    const key = parsePublicKey(publicKey);
    if ((await this.users.sshKeys(u.id)).some((k) => k.fingerprint === key.fingerprint)) throw new GatewayError('conflict', `${name} already has key ${key.fingerprint}`);
    await this.users.addSshKey(u.id, key.line, key.fingerprint, Date.now());
    return key.fingerprint;
  }

  async sshKeys(name: string): Promise<Array<{ fingerprint: string; publicKey: string; createdAt: string }>> {
    const u = await this.require(name);
    return (await this.users.sshKeys(u.id)).map((k) => ({ fingerprint: k.fingerprint, publicKey: k.public_key, createdAt: new Date(k.created_at).toISOString() }));
  }

  async removeSshKey(name: string, fingerprint: string): Promise<void> {
    const u = await this.require(name);
    if (!(await this.users.removeSshKey(u.id, fingerprint))) throw new GatewayError('not_found', `${name} has no key ${fingerprint}`);
  }
}
