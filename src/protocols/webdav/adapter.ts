import type { Request } from 'express';
import { ForbiddenError, Method, ResourceExistsError, type Adapter, type AuthResponse, type User } from 'nephele';
import type { EventService } from '../../cache/EventService.js';
import type { FileSession, NodeInfo } from '../../cache/FileSession.js';
import { nodeKey, type LockRecord, type NodeMetadata } from '../../cache/nodeMetadata.js';
import { GatewayError } from '../../shared/errors.js';
import { canonicalPath } from '../../shared/paths.js';
import { decodeUrlPath, encodeUrlPath } from '../http/paths.js';
import { principalOf } from './authenticator.js';
import { dav, DavStatusError } from './errors.js';
import { EventResource } from './resource.js';

/** Methods that only read: allowed to everyone the event is visible to (owner, its recipients, admins). */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PROPFIND']);
/** Methods that may address an announced file before its upload (lock it, upload it under the lock, unlock it). */
const PENDING_METHODS = new Set(['LOCK', 'UNLOCK', 'PUT']);

/**
 * One adapter per request, rooted at /dav/EVENT/. It opens the FileSession lazily (nephele asks
 * for the adapter before it authenticates) and caches locks and dead properties for the request,
 * so a Depth:1 PROPFIND costs a few batched queries, not several per entry.
 */
export class EventAdapter implements Adapter {
  private sessionPromise: Promise<FileSession> | null = null;
  private readonly locks = new Map<string, LockRecord[]>();
  private readonly props = new Map<string, Map<string, string>>();
  readonly baseUrl: URL;

  constructor(
    private readonly events: EventService,
    readonly eventId: string,
    readonly request: Request,
    readonly response: AuthResponse,
  ) {
    this.baseUrl = new URL(`${request.baseUrl}/${encodeURIComponent(eventId)}/`, `${request.protocol}://${request.headers.host}`);
  }

  session(): Promise<FileSession> {
    this.sessionPromise ??= (async () => {
      const principal = principalOf(this.response.locals.user);
      try {
        return await this.events.open(principal, this.eventId, { protocol: 'webdav', ip: this.request.socket.remoteAddress ?? 'unknown' });
      } catch (err) {
        // Not visible to this principal (or not there at all): the same 403 either way, so nothing is revealed.
        if (err instanceof GatewayError && err.code === 'not_found') throw new ForbiddenError('no access to this event');
        if (err instanceof GatewayError && err.code === 'gone') throw new DavStatusError(410, err.message);
        throw err;
      }
    })();
    return this.sessionPromise;
  }

  async metadata(): Promise<NodeMetadata> {
    return (await this.session()).metadata();
  }

  /** The event-relative canonical path of a URL inside this event; 403 for anything outside it. */
  pathOf(url: URL): string {
    const base = this.baseUrl.pathname;
    const p = url.pathname;
    if (p !== base.slice(0, -1) && !p.startsWith(base)) throw new ForbiddenError('outside this event');
    const rest = p.length >= base.length ? p.slice(base.length) : '';
    try {
      return canonicalPath(decodeUrlPath(rest));
    } catch (err) {
      throw new DavStatusError(400, (err as Error).message);
    }
  }

  urlOf(path: string, collection: boolean): URL {
    const suffix = path === '' ? '' : encodeUrlPath(path) + (collection ? '/' : '');
    return new URL(this.baseUrl.pathname + suffix, this.baseUrl);
  }

  async getComplianceClasses(): Promise<string[]> {
    return ['2'];
  }

  async getAllowedMethods(): Promise<string[]> {
    return [];
  }

  async getOptionsResponseCacheControl(): Promise<string> {
    return 'private, no-cache';
  }

  async isAuthorized(url: URL, method: string, _baseUrl: URL, _user: User): Promise<boolean> {
    const session = await this.session();
    this.pathOf(url);
    if (READ_METHODS.has(method.toUpperCase())) return true;
    // The policy table decides (through FileSession): recipients and closed events are read-only.
    if (!session.mayWrite()) throw new ForbiddenError('read-only access');
    return true;
  }

  async getResource(url: URL): Promise<EventResource> {
    if (this.baseUrl.pathname.startsWith(url.pathname.replace(/\/?$/, '/')) && url.pathname.length < this.baseUrl.pathname.length - 1) {
      // An ancestor of the event root (nephele walks up for locks): nothing there, nothing locked.
      return new EventResource(this, '', null, true, url);
    }
    const path = this.pathOf(url);
    const found = await this.lookup(path);
    if (found.node) return new EventResource(this, path, found.node);
    // An announced file before its upload: lockable, and writable under that lock.
    const pending = PENDING_METHODS.has(this.request.method) ? await this.announced(path) : null;
    if (!pending) throw found.error;
    return new EventResource(this, path, null, false, null, pending.id);
  }

  async newResource(url: URL): Promise<EventResource> {
    const path = this.pathOf(url);
    // An announced, not yet uploaded file: clients (davfs2, Finder) LOCK it before the PUT.
    const pending = await this.announced(path);
    return new EventResource(this, path, null, false, null, pending?.id ?? null);
  }

  async newCollection(url: URL): Promise<EventResource> {
    const path = this.pathOf(url);
    // MKCOL on anything that exists is 405 (RFC 4918 §9.3.1).
    if (path === '' || (await this.lookup(path)).node) throw new ResourceExistsError('already exists');
    return new EventResource(this, path, null, true);
  }

  /**
   * nephele asks for the same resources several times per request (the target, its parent, every
   * ancestor for locks): each path is looked up once until a write drops the memo.
   */
  private readonly lookups = new Map<string, Promise<{ node: NodeInfo | null; error: unknown }>>();
  private readonly pendingLookups = new Map<string, Promise<NodeInfo | null>>();

  private lookup(path: string): Promise<{ node: NodeInfo | null; error: unknown }> {
    return memo(this.lookups, path, () =>
      this.session().then((s) => dav(() => s.stat(path))).then((node) => ({ node, error: null }), (error: unknown) => ({ node: null, error })),
    );
  }

  announced(path: string): Promise<NodeInfo | null> {
    return memo(this.pendingLookups, path, () => this.session().then((s) => s.announced(path)).catch(() => null));
  }

  getMethod(): typeof Method {
    // The base Method answers 405 for anything nephele does not implement itself.
    return Method;
  }

  /** Locks and dead properties of many nodes in a few queries (listings). */
  async prefetch(nodes: Array<NodeInfo | null>): Promise<void> {
    const ids = nodes.map((n) => n?.id ?? null).filter((id) => !this.locks.has(nodeKey(id)));
    if (ids.length === 0) return;
    const meta = await this.metadata();
    for (const [k, v] of await dav(() => meta.locksOn(ids))) this.locks.set(k, v);
    for (const [k, v] of await dav(() => meta.propertiesOf(ids))) this.props.set(k, v);
  }

  async locksOf(fileId: number | null): Promise<LockRecord[]> {
    const k = nodeKey(fileId);
    if (!this.locks.has(k)) {
      const meta = await this.metadata();
      this.locks.set(k, (await dav(() => meta.locksOn([fileId]))).get(k)!);
    }
    return this.locks.get(k)!;
  }

  async propertiesOf(fileId: number | null): Promise<Map<string, string>> {
    const k = nodeKey(fileId);
    if (!this.props.has(k)) {
      const meta = await this.metadata();
      this.props.set(k, (await dav(() => meta.propertiesOf([fileId]))).get(k)!);
    }
    return this.props.get(k)!;
  }

  /** Whether `prefetch` found neither locks nor dead properties on the node (the PROPFIND fast path). */
  isPlain(fileId: number): boolean {
    const k = nodeKey(fileId);
    return this.locks.get(k)?.length === 0 && this.props.get(k)?.size === 0;
  }

  /** Writes go to the database; the request caches are simply dropped. */
  forgetMetadata(): void {
    this.locks.clear();
    this.props.clear();
    this.lookups.clear();
    this.pendingLookups.clear();
  }
}

function memo<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) cache.set(key, (v = make()));
  return v;
}
