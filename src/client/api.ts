import { UserError } from '../cli/io.js';
import type { Connection } from './profile.js';
import type { EventView, RecipientView } from '../cache/EventService.js';
import type { FileView } from '../cache/manifest.js';

/**
 * Shapes of the JSON API v1 answers the sender application reads (CONTRACT): the server's own view
 * types (type-only imports, nothing of the server is loaded), so the two cannot drift apart.
 */
export type FileInfo = FileView;
/** A recipient as listed; `password` only in the answer that created it. */
export type RecipientInfo = RecipientView & { password?: string };
export type EventInfo = Omit<EventView, 'recipients'> & { recipients: RecipientInfo[] };
export interface LogEntry {
  at: string;
  who: string;
  protocol: string;
  action: string;
  path: string | null;
  bytes: number | null;
  ip: string | null;
}
export interface ManifestItem {
  path: string;
  size: number;
  sha256?: string;
}
export interface RecipientRequest {
  name: string;
  sshPublicKey?: string;
  expires?: string;
  maxDownloads?: number;
}

/** An answer the user can act on: one line, plus the status and code for the uploader's retry policy. */
export class ApiError extends UserError {
  constructor(message: string, readonly status: number, readonly code: string) {
    super(message);
  }
  /** Worth retrying later: the gateway is down, restarting, overloaded or briefly locked. */
  get transient(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 423 || this.status === 429 || this.status === 408;
  }
}

export function explain(status: number, code: string, message: string, server: string): string {
  if (status === 401) return `the gateway at ${server} refused the token: run "handoff login ${server}" again or check --token / HANDOFF_TOKEN`;
  if (status === 410) return `${message || 'the event has expired'} (410): it can no longer be changed or downloaded`;
  if (status === 413) return `${message || 'over quota'} (413): the event is full; remove files or send fewer`;
  if (status === 507) return `the gateway's storage is full (507): try again later or ask its operator`;
  if (status === 404 && (message === 'not found' || message === 'no such API route')) return `${server} has no Handoff API v1 here: check --server (the gateway's base address)`;
  if (status === 404 && code === 'not_found' && /event/.test(message)) return `${message}: check the event id with "handoff ls"`;
  return `${message || `request failed with HTTP ${status}`}${code ? ` (${code})` : ''}`;
}

/** A thin client of /api/v1 with one-line errors for every way it can go wrong. */
export class ApiClient {
  constructor(readonly conn: Connection) {}

  get authHeader(): string {
    return `Bearer ${this.conn.token}`;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.conn.server}/api/v1${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: this.authHeader, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      const c = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
      const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).message;
      throw new ApiError(`cannot reach the gateway at ${this.conn.server} (${cause}): check --server / HANDOFF_SERVER`, 0, 'unreachable');
    }
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      throw new ApiError(`${this.conn.server} answered HTTP ${res.status} without JSON: is it a Handoff gateway? check --server`, res.status, 'not_handoff');
    }
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      if (!e) throw new ApiError(`${this.conn.server} answered HTTP ${res.status}: is it a Handoff gateway? check --server`, res.status, 'not_handoff');
      throw new ApiError(explain(res.status, e.code ?? '', e.message ?? '', this.conn.server), res.status, e.code ?? '');
    }
    return parsed as T;
  }

  createEvent(input: { title?: string; expires?: string; files: ManifestItem[]; recipients?: RecipientRequest[] }): Promise<EventInfo> {
    return this.request('POST', '/events', input);
  }
  async listEvents(): Promise<EventInfo[]> {
    return (await this.request<{ events: EventInfo[] }>('GET', '/events?limit=1000')).events;
  }
  getEvent(id: string): Promise<EventInfo> {
    return this.request('GET', `/events/${encodeURIComponent(id)}`);
  }
  updateEvent(id: string, patch: { title?: string; expires?: string; closed?: boolean }): Promise<EventInfo> {
    return this.request('PATCH', `/events/${encodeURIComponent(id)}`, patch);
  }
  deleteEvent(id: string): Promise<null> {
    return this.request('DELETE', `/events/${encodeURIComponent(id)}`);
  }
  announce(id: string, files: ManifestItem[]): Promise<EventInfo> {
    return this.request('POST', `/events/${encodeURIComponent(id)}/files`, { files });
  }
  removeFile(id: string, path: string): Promise<null> {
    return this.request('DELETE', `/events/${encodeURIComponent(id)}/files/${encodePath(path)}`);
  }
  addRecipient(id: string, r: RecipientRequest): Promise<RecipientInfo> {
    return this.request('POST', `/events/${encodeURIComponent(id)}/recipients`, r);
  }
  revokeRecipient(id: string, name: string): Promise<null> {
    return this.request('DELETE', `/events/${encodeURIComponent(id)}/recipients/${encodeURIComponent(name)}`);
  }
  /** Long-poll: answers on the event's next change (upload progress, a state) or after `waitSeconds`. */
  waitForChange(id: string, waitSeconds: number): Promise<{ changed: boolean; event: EventInfo }> {
    return this.request('GET', `/events/${encodeURIComponent(id)}/changes?wait=${waitSeconds}`);
  }
  async log(id: string): Promise<LogEntry[]> {
    return (await this.request<{ entries: LogEntry[] }>('GET', `/events/${encodeURIComponent(id)}/log`)).entries;
  }
  uploadEndpoint(id: string): string {
    return `${this.conn.server}/api/v1/events/${encodeURIComponent(id)}/uploads/`;
  }
  fileUrl(id: string, path: string): string {
    return `${this.conn.server}/e/${encodeURIComponent(id)}/files/${encodePath(path)}`;
  }
}

export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
