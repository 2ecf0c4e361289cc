import type { DomainEvent } from './events.js';

interface Entry {
  eventId: string;
  path: string;
  bytes: number;
  size: number | null;
  count: number;
  lastEmit: number;
  timer: NodeJS.Timeout | null;
}

export interface LiveTransfer {
  eventId: string;
  path: string;
  bytes: number;
  size: number | null;
}

/**
 * Bytes of transfers in flight, by event and path: progress without a database write per chunk.
 * With an `emit` callback it also publishes `file.progress`, at most once per `minIntervalMs` per
 * file (a trailing emission carries the latest value), so live views never flood the bus.
 */
export class LiveTransfers {
  private readonly active = new Map<string, Entry>();

  constructor(private readonly emit?: (e: DomainEvent) => void, private readonly minIntervalMs = 250) {}

  private key(eventId: string, path: string): string {
    return `${eventId}\u0000${path}`;
  }

  start(eventId: string, path: string, size: number | null, bytes: number): void {
    const k = this.key(eventId, path);
    const cur = this.active.get(k);
    if (cur) {
      cur.count++;
      cur.bytes = bytes;
    } else this.active.set(k, { eventId, path, bytes, size, count: 1, lastEmit: 0, timer: null });
  }

  progress(eventId: string, path: string, bytes: number): void {
    const cur = this.active.get(this.key(eventId, path));
    if (!cur) return;
    cur.bytes = bytes;
    if (!this.emit || cur.timer) return;
    const wait = cur.lastEmit + this.minIntervalMs - Date.now();
    if (wait <= 0) this.publish(cur);
    else {
      cur.timer = setTimeout(() => {
        cur.timer = null;
        if (this.active.get(this.key(cur.eventId, cur.path)) === cur) this.publish(cur);
      }, wait);
      cur.timer.unref();
    }
  }

  private publish(e: Entry): void {
    e.lastEmit = Date.now();
    this.emit?.({ type: 'file.progress', at: e.lastEmit, eventId: e.eventId, path: e.path, bytes: e.bytes, size: e.size });
  }

  end(eventId: string, path: string): void {
    const k = this.key(eventId, path);
    const cur = this.active.get(k);
    if (!cur) return;
    if (--cur.count > 0) return;
    if (cur.timer) clearTimeout(cur.timer);
    this.active.delete(k);
  }

  bytes(eventId: string, path: string): number | null {
    return this.active.get(this.key(eventId, path))?.bytes ?? null;
  }

  countForEvent(eventId: string): number {
    let n = 0;
    for (const k of this.active.keys()) if (k.startsWith(eventId + '\u0000')) n++;
    return n;
  }

  /** Every transfer in flight, for dashboards. */
  list(): LiveTransfer[] {
    return [...this.active.values()].map(({ eventId, path, bytes, size }) => ({ eventId, path, bytes, size }));
  }
}
