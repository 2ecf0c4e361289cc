import type { Lock } from 'nephele';
import type { LockRecord } from '../../cache/nodeMetadata.js';
import type { EventResource } from './resource.js';

/** A nephele Lock backed by a dav_locks row; `owner` (the client's XML, parsed) is stored as JSON. */
export class DbLock implements Lock {
  token = '';
  date = new Date();
  timeout = 0;
  scope: 'exclusive' | 'shared' = 'exclusive';
  depth: '0' | 'infinity' = '0';
  provisional = false;
  owner: unknown = undefined;

  constructor(readonly resource: EventResource, readonly principal: string) {}

  static from(resource: EventResource, r: LockRecord): DbLock {
    const l = new DbLock(resource, r.principal);
    l.token = r.token;
    l.date = new Date(r.refreshedAt);
    l.timeout = r.timeoutMs ?? Infinity;
    l.scope = r.scope;
    l.depth = r.depth;
    l.provisional = r.provisional;
    l.owner = r.owner === null ? undefined : JSON.parse(r.owner);
    return l;
  }

  async save(): Promise<void> {
    await this.resource.saveLock({
      token: this.token, fileId: this.resource.fileId, principal: this.principal, scope: this.scope, depth: this.depth,
      owner: this.owner === undefined ? null : JSON.stringify(this.owner), timeoutMs: Number.isFinite(this.timeout) ? this.timeout : null,
      refreshedAt: this.date.getTime(), provisional: this.provisional,
    });
  }

  async delete(): Promise<void> {
    await this.resource.deleteLock(this.token);
  }
}
