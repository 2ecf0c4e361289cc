/** Bytes of transfers in flight, by event and path: progress without a database write per chunk. */
export class LiveTransfers {
  private readonly active = new Map<string, { bytes: number; size: number | null; count: number }>();

  private key(eventId: string, path: string): string {
    return `${eventId}\u0000${path}`;
  }

  start(eventId: string, path: string, size: number | null, bytes: number): void {
    const k = this.key(eventId, path);
    const cur = this.active.get(k);
    if (cur) {
      cur.count++;
      cur.bytes = bytes;
    } else this.active.set(k, { bytes, size, count: 1 });
  }

  progress(eventId: string, path: string, bytes: number): void {
    const cur = this.active.get(this.key(eventId, path));
    if (cur) cur.bytes = bytes;
  }

  end(eventId: string, path: string): void {
    const k = this.key(eventId, path);
    const cur = this.active.get(k);
    if (!cur) return;
    if (--cur.count <= 0) this.active.delete(k);
  }

  bytes(eventId: string, path: string): number | null {
    return this.active.get(this.key(eventId, path))?.bytes ?? null;
  }

  countForEvent(eventId: string): number {
    let n = 0;
    for (const k of this.active.keys()) if (k.startsWith(eventId + '\u0000')) n++;
    return n;
  }
}
