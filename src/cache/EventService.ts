import { EventsRepo } from '../db/repos/events.js';
import { FilesRepo } from '../db/repos/files.js';
import { RecipientsRepo } from '../db/repos/recipients.js';
import { UsersRepo } from '../db/repos/users.js';
import { AccessLogRepo } from '../db/repos/accessLog.js';
import type { AccessLogRow, EventRow, RecipientRow } from '../db/repos/rows.js';
import type { Queryable } from '../db/Database.js';
import { authorize, authorizeCreate, canSee } from '../auth/policy.js';
import type { Principal, RequestContext } from '../auth/principal.js';
import { GatewayError } from '../shared/errors.js';
import { resolveExpiry } from '../shared/duration.js';
import { newEventId, newPassword, randomId } from '../shared/ids.js';
import { baseName, parentOf, ancestorsOf } from '../shared/paths.js';
import { forgetFreeBytes } from './quotaView.js';
import type { CacheDeps } from './deps.js';
import { FileSession } from './FileSession.js';
import { fileView, hiddenFrom, validateManifest, type FileView, type ManifestEntry } from './manifest.js';

export interface RecipientInput {
  name: string;
  sshPublicKey?: string | null;
  expires?: string | null;
  maxDownloads?: number | null;
}

export interface CreateEventInput {
  title?: string;
  expires?: string;
  files: ManifestEntry[];
  recipients?: RecipientInput[];
  webhooks?: string[];
}

export interface RecipientView {
  name: string;
  username: string;
  expiresAt: string | null;
  maxDownloads: number | null;
  downloads: number;
  revoked: boolean;
  lastAccessAt: string | null;
  sftp: string;
}

export interface EventView {
  id: string;
  title: string;
  owner: string;
  createdAt: string;
  expiresAt: string;
  closed: boolean;
  state: 'open' | 'closed' | 'expired' | 'deleted';
  quotaBytes: number;
  usedBytes: number;
  addresses: { web: string; webdav: string; sftp: string };
  completedAt: string | null;
  files: FileView[];
  recipients: RecipientView[];
  webhooks: string[];
}

export interface IssuedCredential {
  name: string;
  username: string;
  password: string;
}

const RECIPIENT_NAME = /^[\p{L}\p{N}][\p{L}\p{N} ._@+-]{0,63}$/u;
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function eventState(e: EventRow, now = Date.now()): EventView['state'] {
  if (e.purged_at !== null) return 'deleted';
  if (e.expires_at <= now) return 'expired';
  return e.closed_at !== null ? 'closed' : 'open';
}

/** Events, manifests and recipients. File operations go through the FileSession it opens. */
export class EventService {
  constructor(private readonly deps: CacheDeps) {}

  private get events(): EventsRepo {
    return new EventsRepo(this.deps.db);
  }

  private expiryFrom(text: string | undefined | null, now: number, field: string, maxTtlMs = this.deps.limits.maxTtlMs): number {
    const t = text ? resolveExpiry(text, now, field) : now + this.deps.limits.defaultTtlMs;
    if (t <= now) throw new GatewayError('bad_request', `${field} must be in the future`);
    return Math.min(t, now + maxTtlMs);
  }

  private async senderLimits(principal: Principal): Promise<{ maxTtlMs: number; maxQuota: number }> {
    const user = principal.kind === 'recipient' ? undefined : await new UsersRepo(this.deps.db).byId(principal.id);
    return {
      maxTtlMs: Math.min(this.deps.limits.maxTtlMs, user?.max_ttl_ms ?? Infinity),
      maxQuota: Math.min(this.deps.limits.maxQuotaBytes, user?.quota_bytes ?? Infinity),
    };
  }

  async create(principal: Principal, input: CreateEventInput): Promise<{ event: EventView; credentials: IssuedCredential[] }> {
    authorizeCreate(principal);
    const now = Date.now();
    const files = validateManifest(input.files, this.deps.limits.maxFiles);
    const limits = await this.senderLimits(principal);
    const expiresAt = this.expiryFrom(input.expires, now, 'expires', limits.maxTtlMs);
    const announced = files.reduce((n, f) => n + f.size, 0);
    const quota = announced + this.deps.limits.quotaSlack;
    if (quota > limits.maxQuota) throw new GatewayError('quota_exceeded', `the manifest (${announced} bytes) exceeds the allowed event size`);
    const title = (input.title ?? '').trim().slice(0, 200);
    const webhooks = this.checkWebhooks(input.webhooks ?? []);
    const prepared = await this.prepareRecipients(input.recipients ?? [], now);
    const id = newEventId();
    await this.deps.storage.createContainer(id);
    await this.deps.db.transaction(async (tx) => {
      await new EventsRepo(tx).insert({ id, owner_id: principal.id, title, created_at: now, expires_at: expiresAt, quota_bytes: quota });
      await this.insertManifest(tx, id, files, now);
      for (const r of prepared) await this.insertRecipient(tx, id, r);
      for (const url of webhooks) await tx.run('INSERT INTO event_webhooks (event_id, url, created_at) VALUES (?, ?, ?)', [id, url, now]);
    });
    this.deps.bus.emit({ type: 'event.created', at: now, eventId: id, by: principal.name });
    this.deps.recorder.record({ event_id: id, at: now, who: principal.name, protocol: 'api', action: 'event.create', path: null, bytes: announced, ip: null });
    const event = (await this.events.byId(id))!;
    const credentials = await Promise.all(
      prepared.map(async (r) => ({ name: r.name, username: (await new RecipientsRepo(this.deps.db).byName(id, r.name))!.username, password: r.password })),
    );
    return { event: await this.view(event), credentials };
  }

  /** Folders for every announced path, then the files as `pending`; one multi-row insert per chunk. */
  private async insertManifest(tx: Queryable, eventId: string, files: Array<{ path: string; size: number; sha256: string | null }>, now: number): Promise<void> {
    const repo = new FilesRepo(tx);
    const existing = new Set<string>();
    const dirs: string[] = [];
    for (const f of files) for (const d of ancestorsOf(f.path)) if (!existing.has(d)) (existing.add(d), dirs.push(d));
    const rows: Array<[string, string, string, string, number | null, string | null, string]> = [];
    // One lookup for every path at once: per-path queries made a 1,000-file manifest cost 1,000 round trips.
    const found = await repo.byPaths(eventId, [...dirs, ...files.map((f) => f.path)]);
    for (const d of dirs) {
      const row = found.get(d);
      if (row && row.kind !== 'dir' && row.state !== 'removed') throw new GatewayError('conflict', `${d} is a file`);
      if (!row) rows.push([d, parentOf(d), baseName(d), 'dir', null, null, 'complete']);
    }
    for (const f of files) {
      const row = found.get(f.path);
      if (row && row.state !== 'removed') throw new GatewayError('conflict', `${f.path} is already in the event`);
      if (row) await repo.remove(row.id);
      rows.push([f.path, parentOf(f.path), baseName(f.path), 'file', f.size, f.sha256, 'pending']);
    }
    for (let i = 0; i < rows.length; i += 80) {
      const chunk = rows.slice(i, i + 80);
      await tx.run(
        `INSERT INTO files (event_id, path, parent, name, kind, size, sha256, state, mtime, created_at, updated_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        chunk.flatMap(([path, parent, name, kind, size, sha, state]) => [eventId, path, parent, name, kind, size, sha, state, now, now, now]),
      );
    }
  }

  private async prepareRecipients(inputs: RecipientInput[], now: number) {
    const names = new Set<string>();
    const out: Array<{ name: string; password: string; hash: string | null; sshKey: string | null; expiresAt: number | null; maxDownloads: number | null }> = [];
    for (const [i, r] of inputs.entries()) {
      const name = r.name.normalize('NFC').trim();
      if (!RECIPIENT_NAME.test(name)) throw new GatewayError('bad_request', `recipients[${i}].name must be 1-64 letters, digits, spaces or ._@+-`);
      if (names.has(name)) throw new GatewayError('bad_request', `recipients[${i}].name is given twice`);
      names.add(name);
      if (r.maxDownloads !== undefined && r.maxDownloads !== null && (!Number.isSafeInteger(r.maxDownloads) || r.maxDownloads < 1)) {
        throw new GatewayError('bad_request', `recipients[${i}].maxDownloads must be a positive integer`);
      }
      const sshKey = r.sshPublicKey?.trim() || null;
      if (sshKey && !/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/.test(sshKey)) {
        throw new GatewayError('bad_request', `recipients[${i}].sshPublicKey is not an OpenSSH public key`);
      }
      const password = newPassword();
      out.push({
        name, password, hash: await this.deps.hasher.hash(password), sshKey,
        expiresAt: r.expires ? this.expiryFrom(r.expires, now, `recipients[${i}].expires`) : null, maxDownloads: r.maxDownloads ?? null,
      });
    }
    return out;
  }

  /** Usernames are unique across the gateway (one SFTP server), never equal to an account name. */
  private async insertRecipient(tx: Queryable, eventId: string, r: Awaited<ReturnType<EventService['prepareRecipients']>>[number]): Promise<void> {
    const slug = r.name.normalize('NFKD').toLowerCase().replace(/[^a-z0-9]+/g, '').slice(0, 24) || 'r';
    const recipients = new RecipientsRepo(tx);
    if (await recipients.byName(eventId, r.name)) throw new GatewayError('conflict', `recipient ${r.name} already exists`);
    let username = `${slug}-${eventId.slice(0, 6)}`;
    for (let attempt = 0; ; attempt++) {
      const taken = (await recipients.byUsername(username)) || (await tx.get('SELECT 1 AS x FROM users WHERE name = ?', [username]));
      if (!taken) break;
      username = `${slug}-${eventId.slice(0, 6)}${randomId(4)}`;
      if (attempt > 5) throw new GatewayError('internal', 'could not allocate a username');
    }
    await recipients.insert({
      event_id: eventId, name: r.name, username, password_hash: r.hash, ssh_public_key: r.sshKey, expires_at: r.expiresAt, max_downloads: r.maxDownloads, created_at: Date.now(),
    });
  }

  /** The event if this principal may see it; NOT_FOUND otherwise, so ids of others' events are not confirmed. */
  async visible(principal: Principal, id: string): Promise<EventRow> {
    const event = await this.events.byId(id);
    if (!event || !canSee(principal, event)) throw new GatewayError('not_found', 'no such event');
    return event;
  }

  private live(event: EventRow): void {
    const state = eventState(event);
    if (state === 'deleted') throw new GatewayError('gone', 'this event has been deleted');
    if (state === 'expired') throw new GatewayError('gone', 'this event has expired');
  }

  /** A FileSession on a live event, for any protocol. */
  async open(principal: Principal, id: string, ctx: RequestContext): Promise<FileSession> {
    const event = await this.visible(principal, id);
    this.live(event);
    return new FileSession(this.deps, principal, event, ctx);
  }

  /** The event as this principal may see it (recipients are not shown client clutter). */
  async get(principal: Principal, id: string): Promise<EventView> {
    const view = await this.view(await this.visible(principal, id));
    return { ...view, files: view.files.filter((f) => !hiddenFrom(principal, f.path)) };
  }

  async list(principal: Principal, limit = 100, offset = 0): Promise<EventView[]> {
    if (principal.kind === 'recipient') return [await this.get(principal, principal.eventId)];
    const rows = await this.events.list(principal.kind === 'admin' ? null : principal.id, limit, offset);
    return Promise.all(rows.map((r) => this.view(r, false)));
  }

  async view(event: EventRow, withFiles = true): Promise<EventView> {
    const owner = await new UsersRepo(this.deps.db).byId(event.owner_id);
    const files = withFiles ? await new FilesRepo(this.deps.db).allFiles(event.id) : [];
    const recipients = withFiles ? await new RecipientsRepo(this.deps.db).forEvent(event.id) : [];
    // Uploads between two requests (tus, paused) still report the bytes they hold.
    const paused = new Map<string, number>();
    if (files.some((f) => f.state === 'uploading')) {
      for (const u of await this.deps.db.query<{ path: string; offset: number }>(
        'SELECT path, MAX(offset_bytes) AS offset FROM uploads WHERE event_id = ? AND completed_at IS NULL GROUP BY path',
        [event.id],
      )) paused.set(u.path, u.offset);
    }
    const a = this.deps.addresses;
    return {
      id: event.id,
      title: event.title,
      owner: owner?.name ?? '',
      createdAt: iso(event.created_at)!,
      expiresAt: iso(event.expires_at)!,
      closed: event.closed_at !== null,
      state: eventState(event),
      quotaBytes: event.quota_bytes,
      usedBytes: event.used_bytes,
      addresses: { web: a.web(event.id), webdav: a.webdav(event.id), sftp: a.sftp(event.id) },
      completedAt: iso(event.completed_at),
      files: files.map((f) => fileView(f, f.state === 'uploading' ? (this.deps.live.bytes(event.id, f.path) ?? paused.get(f.path) ?? null) : null)),
      recipients: recipients.map((r) => this.recipientView(r)),
      webhooks: withFiles ? (await this.deps.db.query<{ url: string }>('SELECT url FROM event_webhooks WHERE event_id = ? ORDER BY id', [event.id])).map((w) => w.url) : [],
    };
  }

  /** Per-event webhook URLs (http/https only; the operator can turn the feature off: SSRF surface). */
  private checkWebhooks(urls: string[]): string[] {
    if (urls.length === 0) return [];
    if (!this.deps.eventWebhooks) throw new GatewayError('forbidden', 'per-event webhooks are disabled on this gateway');
    if (urls.length > 5) throw new GatewayError('bad_request', 'at most 5 webhooks per event');
    return urls.map((u, i) => {
      let parsed: URL;
      try {
        parsed = new URL(u);
      } catch {
        throw new GatewayError('bad_request', `webhooks[${i}] is not a URL`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new GatewayError('bad_request', `webhooks[${i}] must be http or https`);
      if (parsed.username || parsed.password) throw new GatewayError('bad_request', `webhooks[${i}] may not carry credentials`);
      return parsed.toString();
    });
  }

  recipientView(r: RecipientRow): RecipientView {
    return {
      name: r.name, username: r.username, expiresAt: iso(r.expires_at), maxDownloads: r.max_downloads, downloads: r.downloads,
      revoked: r.revoked_at !== null, lastAccessAt: iso(r.last_access_at), sftp: this.deps.addresses.sftpUser(r.username),
    };
  }

  private async manageable(principal: Principal, id: string): Promise<EventRow> {
    const event = await this.visible(principal, id);
    authorize(principal, 'manage', event);
    return event;
  }

  async update(principal: Principal, id: string, patch: { title?: string; expires?: string; closed?: boolean; webhooks?: string[] }): Promise<EventView> {
    const event = await this.manageable(principal, id);
    if (event.purged_at !== null) throw new GatewayError('gone', 'this event has been deleted');
    const now = Date.now();
    const fields: Parameters<EventsRepo['update']>[1] = {};
    if (patch.title !== undefined) fields.title = patch.title.trim().slice(0, 200);
    if (patch.expires !== undefined) fields.expires_at = this.expiryFrom(patch.expires, now, 'expires', (await this.senderLimits(principal)).maxTtlMs);
    if (patch.closed !== undefined) fields.closed_at = patch.closed ? (event.closed_at ?? now) : null;
    const webhooks = patch.webhooks === undefined ? null : this.checkWebhooks(patch.webhooks);
    await this.deps.db.transaction(async (tx) => {
      await new EventsRepo(tx).update(id, fields);
      if (webhooks === null) return;
      await tx.run('DELETE FROM event_webhooks WHERE event_id = ?', [id]);
      for (const url of webhooks) await tx.run('INSERT INTO event_webhooks (event_id, url, created_at) VALUES (?, ?, ?)', [id, url, now]);
    });
    if (patch.closed) this.deps.bus.emit({ type: 'event.closed', at: now, eventId: id });
    return this.get(principal, id);
  }

  /** Purges the cache now; metadata and the access log stay as a tombstone, addresses answer 410. */
  async delete(principal: Principal, id: string): Promise<void> {
    const event = await this.manageable(principal, id);
    await this.purge(event);
  }

  /**
   * Database first (tombstone committed), then storage: a crash between the two leaves a container
   * no live event owns, which the retention sweep and start-up recovery remove.
   */
  async purge(event: EventRow, reason: 'deleted' | 'expired' = 'deleted'): Promise<void> {
    const now = Date.now();
    await this.deps.db.transaction(async (tx) => {
      await tx.run('UPDATE events SET purged_at = COALESCE(purged_at, ?), used_bytes = 0, reserved_bytes = 0 WHERE id = ?', [now, event.id]);
      await tx.run("UPDATE files SET state = 'removed', blob = NULL, bytes = 0, updated_at = ? WHERE event_id = ? AND kind = 'file' AND state <> 'removed'", [now, event.id]);
      await tx.run('DELETE FROM uploads WHERE event_id = ?', [event.id]);
    });
    for (const r of await new RecipientsRepo(this.deps.db).forEvent(event.id)) this.deps.credentials.forget(`recipient:${r.id}`);
    await this.deps.storage.removeContainer(event.id);
    this.deps.bus.emit({ type: 'event.deleted', at: now, eventId: event.id });
    this.deps.recorder.record({ event_id: event.id, at: now, who: 'system', protocol: 'api', action: reason === 'expired' ? 'event.expire' : 'event.delete', path: null, bytes: null, ip: null });
  }

  /** Announces more files; the quota grows by their sizes. */
  async announce(principal: Principal, id: string, entries: ManifestEntry[]): Promise<EventView> {
    const event = await this.manageable(principal, id);
    this.live(event);
    if (event.closed_at !== null) throw new GatewayError('conflict', 'the event is closed for changes');
    const files = validateManifest(entries, this.deps.limits.maxFiles);
    const bytes = files.reduce((n, f) => n + f.size, 0);
    const limits = await this.senderLimits(principal);
    if (event.quota_bytes + bytes > limits.maxQuota) throw new GatewayError('quota_exceeded', 'the new files exceed the allowed event size');
    const now = Date.now();
    await this.deps.db.transaction(async (tx) => {
      const count = await new FilesRepo(tx).countFiles(id);
      if (count + files.length > this.deps.limits.maxFiles) throw new GatewayError('bad_request', `an event may hold at most ${this.deps.limits.maxFiles} files`);
      await this.insertManifest(tx, id, files, now);
      await tx.run('UPDATE events SET quota_bytes = quota_bytes + ? WHERE id = ?', [bytes, id]);
    });
    forgetFreeBytes(this.deps.db, id);
    return this.get(principal, id);
  }

  async addRecipient(principal: Principal, id: string, input: RecipientInput): Promise<{ recipient: RecipientView; credential: IssuedCredential }> {
    const event = await this.manageable(principal, id);
    this.live(event);
    const [prepared] = await this.prepareRecipients([input], Date.now());
    await this.deps.db.transaction((tx) => this.insertRecipient(tx, id, prepared));
    const row = (await new RecipientsRepo(this.deps.db).byName(id, prepared.name))!;
    return { recipient: this.recipientView(row), credential: { name: row.name, username: row.username, password: prepared.password } };
  }

  /** Revocation is immediate: the row is marked, cached credentials are dropped, live sessions are told. */
  async revokeRecipient(principal: Principal, id: string, name: string): Promise<void> {
    await this.manageable(principal, id);
    const recipients = new RecipientsRepo(this.deps.db);
    const row = await recipients.byName(id, name);
    if (!row) throw new GatewayError('not_found', `no recipient ${name}`);
    const now = Date.now();
    await recipients.revoke(row.id, now);
    this.deps.credentials.forget(`recipient:${row.id}`);
    this.deps.bus.emit({ type: 'recipient.revoked', at: now, eventId: id, recipientId: row.id });
  }

  /** A new generated password for a recipient (shown once); the old one stops working at once. */
  async resetRecipientPassword(principal: Principal, id: string, name: string, ctx?: RequestContext): Promise<IssuedCredential> {
    const event = await this.manageable(principal, id);
    this.live(event);
    const recipients = new RecipientsRepo(this.deps.db);
    const row = await recipients.byName(id, name);
    if (!row) throw new GatewayError('not_found', `no recipient ${name}`);
    if (row.revoked_at !== null) throw new GatewayError('conflict', `recipient ${name} is revoked`);
    const password = newPassword();
    await recipients.setPassword(row.id, await this.deps.hasher.hash(password));
    this.deps.credentials.forget(`recipient:${row.id}`);
    this.deps.recorder.record({
      event_id: id, at: Date.now(), who: principal.name, protocol: ctx?.protocol ?? 'api', action: 'recipient.password', path: null, bytes: null, ip: ctx?.ip ?? null,
    });
    return { name: row.name, username: row.username, password };
  }

  async accessLog(principal: Principal, id: string, limit = 10_000): Promise<AccessLogRow[]> {
    await this.manageable(principal, id);
    await this.deps.recorder.flush();
    return new AccessLogRepo(this.deps.db).forEvent(id, limit);
  }
}
