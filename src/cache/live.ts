import { EventEmitter } from 'node:events';
import type { DomainBus } from './events.js';

export type LiveSignal =
  | { kind: 'progress'; uploadId: string; bytes: number }
  | { kind: 'rewind'; uploadId: string; bytes: number }
  | { kind: 'end'; uploadId: string; outcome: 'complete' | 'failed' | 'aborted' | 'paused' };

interface Entry {
  eventId: string;
  path: string;
  uploadId: string;
  size: number | null;
  bytes: number;
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
 * Transfers in flight, by event and path: progress for listings and live pages without a database
 * write per chunk, and signals that followers (downloads of a file still uploading) wait on.
 * `bytes` is always the contiguous prefix already written, never a range with holes.
 */
export class LiveTransfers {
  private readonly active = new Map<string, Entry>();
  private readonly signals = new EventEmitter();

  /** `file.progress` goes on the bus at most once per `minIntervalMs` per file; a trailing one carries the latest value. */
  constructor(private readonly bus: DomainBus, private readonly minIntervalMs = 250) {
    this.signals.setMaxListeners(0);
  }

  private key(eventId: string, path: string): string {
    return `${eventId}\u0000${path}`;
  }

  start(eventId: string, path: string, uploadId: string, size: number | null, bytes: number): void {
    const k = this.key(eventId, path);
    const cur = this.active.get(k);
    if (cur && cur.uploadId === uploadId) cur.count++;
    else this.active.set(k, { eventId, path, uploadId, size, bytes, count: 1, lastEmit: 0, timer: null });
    this.signals.emit(k, { kind: 'progress', uploadId, bytes } satisfies LiveSignal);
  }

  progress(eventId: string, path: string, uploadId: string, bytes: number): void {
    const k = this.key(eventId, path);
    const cur = this.active.get(k);
    if (!cur || cur.uploadId !== uploadId) return;
    cur.bytes = bytes;
    this.signals.emit(k, { kind: 'progress', uploadId, bytes } satisfies LiveSignal);
    if (cur.timer) return;
    const wait = cur.lastEmit + this.minIntervalMs - Date.now();
    if (wait <= 0) this.publish(cur);
    else {
      cur.timer = setTimeout(() => {
        cur.timer = null;
        if (this.active.get(k) === cur) this.publish(cur);
      }, wait);
      cur.timer.unref();
    }
  }

  private publish(e: Entry): void {
    e.lastEmit = Date.now();
    this.bus.emit({ type: 'file.progress', at: e.lastEmit, eventId: e.eventId, path: e.path, bytes: e.bytes, size: e.size });
  }

  /** Bytes that were written but then discarded (a chunk that failed its checksum). */
  rewind(eventId: string, path: string, uploadId: string, bytes: number): void {
    const k = this.key(eventId, path);
    const cur = this.active.get(k);
    if (cur && cur.uploadId === uploadId) cur.bytes = bytes;
    this.signals.emit(k, { kind: 'rewind', uploadId, bytes } satisfies LiveSignal);
  }

  end(eventId: string, path: string, uploadId: string, outcome: 'complete' | 'failed' | 'aborted' | 'paused'): void {
    const k = this.key(eventId, path);
    const cur = this.active.get(k);
    if (cur && cur.uploadId === uploadId && --cur.count <= 0) {
      if (cur.timer) clearTimeout(cur.timer);
      this.active.delete(k);
    }
    if (outcome === 'paused' && cur && cur.count > 0) return;
    this.signals.emit(k, { kind: 'end', uploadId, outcome } satisfies LiveSignal);
  }

  bytes(eventId: string, path: string): number | null {
    return this.active.get(this.key(eventId, path))?.bytes ?? null;
  }

  current(eventId: string, path: string): { uploadId: string; bytes: number; size: number | null } | null {
    const e = this.active.get(this.key(eventId, path));
    return e ? { uploadId: e.uploadId, bytes: e.bytes, size: e.size } : null;
  }

  subscribe(eventId: string, path: string, listener: (s: LiveSignal) => void): () => void {
    const k = this.key(eventId, path);
    this.signals.on(k, listener);
    return () => this.signals.off(k, listener);
  }

  /** Every transfer in flight, for dashboards. */
  list(): LiveTransfer[] {
    return [...this.active.values()].map(({ eventId, path, bytes, size }) => ({ eventId, path, bytes, size }));
  }

  countForEvent(eventId: string): number {
    let n = 0;
    for (const k of this.active.keys()) if (k.startsWith(eventId + '\u0000')) n++;
    return n;
  }
}
