import type { Principal, RequestContext } from '../../auth/principal.js';
import type { EventService } from '../../cache/EventService.js';
import type { FileSession, NodeInfo } from '../../cache/FileSession.js';
import { GatewayError } from '../../shared/errors.js';
import { resolveLexical } from '../../shared/paths.js';
import type { Attrs } from './codec.js';

/** A path inside one event, or the sender's virtual root that lists its events. */
export type Place = { kind: 'root' } | { kind: 'event'; fs: FileSession; rel: string; eventId: string };

const SESSION_TTL_MS = 10_000;

/** Canonical absolute virtual path ('/' or '/a/b'); '..' is clamped at '/', never above it. */
export function virtualPath(raw: string): string {
  return '/' + resolveLexical(raw);
}

/**
 * What one SFTP login sees. A recipient's `/` is its event's root, read-only; a sender's or admin's
 * `/` holds one folder per event it may manage (`/EVENT/...`). FileSessions are reused for a few
 * seconds so a burst of requests costs one event lookup, and are re-opened so expiry, closing and
 * deletion take effect.
 */
export class VirtualTree {
  private readonly sessions = new Map<string, { fs: FileSession; at: number }>();

  constructor(
    private readonly events: EventService,
    readonly principal: Principal,
    private readonly ctx: RequestContext,
  ) {}

  get readOnly(): boolean {
    return this.principal.kind === 'recipient';
  }

  private async session(eventId: string): Promise<FileSession> {
    const now = Date.now();
    const hit = this.sessions.get(eventId);
    if (hit && now - hit.at < SESSION_TTL_MS && hit.fs.event.expires_at > now) return hit.fs;
    this.sessions.delete(eventId);
    const fs = await this.events.open(this.principal, eventId, this.ctx);
    this.sessions.set(eventId, { fs, at: now });
    return fs;
  }

  forget(eventId?: string): void {
    if (eventId) this.sessions.delete(eventId);
    else this.sessions.clear();
  }

  async resolve(raw: string): Promise<Place> {
    const rel = virtualPath(raw).slice(1);
    if (this.principal.kind === 'recipient') {
      const eventId = this.principal.eventId;
      return { kind: 'event', fs: await this.session(eventId), rel, eventId };
    }
    if (rel === '') return { kind: 'root' };
    const slash = rel.indexOf('/');
    const eventId = slash < 0 ? rel : rel.slice(0, slash);
    return { kind: 'event', fs: await this.session(eventId), rel: slash < 0 ? '' : rel.slice(slash + 1), eventId };
  }

  /** Like resolve, for operations that change something: the sender's root is not writable. */
  async resolveInEvent(raw: string): Promise<Extract<Place, { kind: 'event' }>> {
    const place = await this.resolve(raw);
    if (place.kind === 'root') throw new GatewayError('forbidden', 'the top level lists your events; work inside /EVENT/');
    return place;
  }

  /** One page of the sender's events that are still open or closed (not expired or deleted). */
  async eventPage(offset: number, limit: number): Promise<{ entries: NodeInfo[]; scanned: number }> {
    const views = await this.events.list(this.principal, limit, offset);
    const entries = views
      .filter((v) => v.state === 'open' || v.state === 'closed')
      .map((v): NodeInfo => ({
        id: null, path: v.id, name: v.id, kind: 'dir', size: 0, mtime: Date.parse(v.createdAt), created: Date.parse(v.createdAt), sha256: null, etag: v.id,
      }));
    return { entries, scanned: views.length };
  }

  rootNode(): NodeInfo {
    return { id: null, path: '', name: '', kind: 'dir', size: 0, mtime: 0, created: 0, sha256: null, etag: 'root' };
  }

  attrsOf(node: NodeInfo, writable = !this.readOnly): Attrs {
    const mode = node.kind === 'dir' ? (writable ? 0o40755 : 0o40555) : writable ? 0o100644 : 0o100444;
    const t = Math.floor(node.mtime / 1000);
    return { size: node.size, permissions: mode, atime: t, mtime: t };
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The `ls -l` line OpenSSH's `ls -l` prints verbatim. */
export function longName(name: string, a: Attrs, owner: string): string {
  const mode = a.permissions ?? 0;
  const type = (mode & 0o170000) === 0o040000 ? 'd' : '-';
  let perms = '';
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (mode >> shift) & 7;
    perms += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  const d = new Date((a.mtime ?? 0) * 1000);
  const recent = Math.abs(Date.now() - d.getTime()) < 180 * 86_400_000;
  const when = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${
    recent ? `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}` : String(d.getUTCFullYear()).padStart(5)
  }`;
  const who = owner.slice(0, 8).padEnd(8);
  return `${type}${perms}    1 ${who} ${who} ${String(a.size ?? 0).padStart(8)} ${when} ${name}`;
}
