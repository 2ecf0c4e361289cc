import { authorize, authorizeAdmin } from '../auth/policy.js';
import type { Principal } from '../auth/principal.js';
import { SummariesRepo, type AccessLogFilter } from '../db/repos/summaries.js';
import type { AccessLogRow } from '../db/repos/rows.js';
import type { CacheDeps } from './deps.js';
import { eventState, type EventService, type EventView, type RecipientView } from './EventService.js';
import { RecipientsRepo } from '../db/repos/recipients.js';
import type { LiveTransfer } from './live.js';
import { fileView, type FileView } from './manifest.js';

export interface EventSummary extends Omit<EventView, 'files' | 'recipients' | 'completedAt' | 'webhooks'> {
  filesAnnounced: number;
  filesComplete: number;
  recipientCount: number;
  lastDownloadAt: string | null;
}

export interface Page<T> {
  items: T[];
  total: number;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/**
 * Read-only overviews for the admin panel (and later dashboards): event lists with counts, a page
 * of a manifest, a filtered access log, storage and transfers in flight. Permission checks go
 * through policy.ts like everything else in the domain layer.
 */
export class Reports {
  private readonly repo: SummariesRepo;
  constructor(private readonly deps: CacheDeps, private readonly events: EventService) {
    this.repo = new SummariesRepo(deps.db);
  }

  async eventSummaries(principal: Principal, limit: number, offset: number): Promise<Page<EventSummary>> {
    if (principal.kind === 'recipient') return { items: [], total: 0 };
    const owner = principal.kind === 'admin' ? null : principal.id;
    const rows = await this.repo.events(owner, limit, offset);
    const a = this.deps.addresses;
    const items = rows.map((e) => ({
      id: e.id, title: e.title, owner: e.owner_name ?? '', createdAt: iso(e.created_at)!, expiresAt: iso(e.expires_at)!, closed: e.closed_at !== null,
      state: eventState(e), quotaBytes: e.quota_bytes, usedBytes: e.used_bytes, addresses: { web: a.web(e.id), webdav: a.webdav(e.id), sftp: a.sftp(e.id) },
      filesAnnounced: e.files_announced, filesComplete: e.files_complete, recipientCount: e.recipients, lastDownloadAt: iso(e.last_download_at),
    }));
    return { items, total: await this.repo.countEvents(owner) };
  }

  /** The event's metadata and addresses without its manifest (which `manifestPage` pages through). */
  async eventHeader(principal: Principal, id: string): Promise<EventView> {
    return this.events.view(await this.events.visible(principal, id), false);
  }

  async recipients(principal: Principal, id: string): Promise<RecipientView[]> {
    const event = await this.events.visible(principal, id);
    authorize(principal, 'manage', event);
    return (await new RecipientsRepo(this.deps.db).forEvent(id)).map((r) => this.events.recipientView(r));
  }

  /** One page of an event's manifest in path order, with live bytes for uploads in flight. */
  async manifestPage(principal: Principal, id: string, limit: number, offset: number): Promise<Page<FileView> & { complete: number }> {
    await this.events.visible(principal, id);
    const rows = await this.repo.filesPage(id, limit, offset);
    const counts = await this.repo.fileCounts(id);
    return {
      items: rows.map((f) => fileView(f, f.state === 'uploading' ? this.deps.live.bytes(id, f.path) : null)),
      total: counts.announced,
      complete: counts.complete,
    };
  }

  /** Newest first; one row more than asked tells the caller there is a next page. */
  async accessLog(principal: Principal, id: string, filter: AccessLogFilter, limit: number, offset: number): Promise<{ entries: AccessLogRow[]; more: boolean }> {
    const event = await this.events.visible(principal, id);
    authorize(principal, 'manage', event);
    await this.deps.recorder.flush();
    const rows = await this.repo.accessLog(id, filter, limit + 1, offset);
    return { entries: rows.slice(0, limit), more: rows.length > limit };
  }

  async storage(principal: Principal): Promise<{ usedBytes: number; totalBytes: number; freeBytes: number }> {
    authorizeAdmin(principal);
    const space = await this.deps.storage.space();
    return { usedBytes: await this.repo.usedBytes(), totalBytes: space.totalBytes, freeBytes: space.freeBytes };
  }

  transfers(principal: Principal): LiveTransfer[] {
    authorizeAdmin(principal);
    return this.deps.live.list();
  }
}
