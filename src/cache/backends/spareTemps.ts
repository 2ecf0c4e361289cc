import { rm } from 'node:fs/promises';
import { randomId } from '../../shared/ids.js';
import type { RawFile } from './rawFile.js';

/**
 * An empty file created ahead of demand where the event's blobs live, under a blob's name: an
 * upload writing to it commits without a rename. Its open descriptor comes with it.
 */
export interface Spare {
  name: string;
  path: string;
  fh: RawFile;
}

/** Spares kept per event folder, and how low the stock may fall before it is topped up. */
const STOCK = 8;
const LOW = 4;
/** An event counts as busy when its fresh uploads come closer together than this. */
const BUSY_GAP_MS = 10_000;
/** A stock nobody took from for this long is closed and its files removed. */
const IDLE_MS = 30_000;
/** Events with a stock at a time (one descriptor per spare). */
const MAX_STOCKS = 16;

interface Stock {
  spares: Spare[];
  refilling: boolean;
  prepared: boolean;
  lastFresh: number;
  /** Set when the stock is dropped: a refill still running closes what it makes. */
  dropped: boolean;
}

export interface SpareSource {
  /** Runs once before an event's first spares are made. */
  prepare(eventId: string): Promise<void>;
  /** The path of a spare named `name` (a blob's name) in the event's folder. */
  pathOf(eventId: string, name: string): string;
  /** Creates it exclusively (on the thread pool) and returns its descriptor. */
  create(path: string): Promise<RawFile>;
}

/**
 * Empty temps made in advance for events that receive many small uploads (a folder copied over
 * WebDAV or `put *` over SFTP). Creating a file right after the previous upload's flushes waited
 * for the disk here (inode allocation: 185-420 µs medians in a plain loop of create, write, rename,
 * fsync; 10 µs to rename a file made earlier), and every small upload waited for it. Created a few
 * at a time off the request path, one such wait covers several files. Taking a spare is no system
 * call: the upload writes to the spare's name (LocalBackend maps its temp id to it).
 *
 * A spare is made in the event's folder under a fresh blob name, so its commit keeps that name and
 * renames nothing. (Renamed out of a spares folder of their own, as first built, their renames took
 * 120 µs per 4 KiB PUT in the gateway against 35 in a plain loop: a rename locks both folders, and
 * the refill's creates held the spares' one.) Until an upload commits it, a spare is an empty blob
 * no row points at. The storage sweep leaves blobs younger than its cutoff alone, and empty ones
 * younger than 15 minutes even at start-up (another node sharing the storage may hold them; a
 * second node's start-up took a first one's spares before that rule). A spare never gets that old:
 * spares are taken oldest first, and a stock nobody takes from for 30 s is dropped, so one waits
 * at most STOCK × 30 s. A crash leaves them to a later sweep, which counts them as orphan blobs.
 */
export class SpareTemps {
  private readonly stocks = new Map<string, Stock>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly source: SpareSource) {}

  /** A spare for a fresh upload into `eventId`, or null (the caller creates its temp as before). */
  take(eventId: string): Spare | null {
    const now = Date.now();
    let stock = this.stocks.get(eventId);
    if (!stock) {
      // The first upload only marks the event; spares are made once a second one follows.
      this.admit(eventId, { spares: [], refilling: false, prepared: false, lastFresh: now, dropped: false });
      return null;
    }
    const busy = now - stock.lastFresh < BUSY_GAP_MS;
    stock.lastFresh = now;
    // Most recently used last: the first entry is the one to evict.
    this.stocks.delete(eventId);
    this.stocks.set(eventId, stock);
    // Oldest first, which bounds a spare's age (see above).
    const spare = stock.spares.shift() ?? null;
    if (busy && stock.spares.length < LOW) this.refill(eventId, stock);
    return spare;
  }

  private admit(eventId: string, stock: Stock): void {
    if (this.stocks.size >= MAX_STOCKS) this.drop(this.stocks.keys().next().value!);
    this.stocks.set(eventId, stock);
    this.timer ??= setInterval(() => this.evictIdle(), IDLE_MS / 3).unref();
  }

  private refill(eventId: string, stock: Stock): void {
    if (stock.refilling) return;
    stock.refilling = true;
    void (async () => {
      try {
        if (!stock.prepared) {
          await this.source.prepare(eventId);
          stock.prepared = true;
        }
        while (!stock.dropped && stock.spares.length < STOCK) {
          const name = randomId(26);
          const path = this.source.pathOf(eventId, name);
          const fh = await this.source.create(path);
          if (stock.dropped) {
            await discard({ name, path, fh });
            break;
          }
          stock.spares.push({ name, path, fh });
        }
      } catch {
        // A folder that went away or a full disk: uploads create their temps themselves.
      } finally {
        stock.refilling = false;
      }
    })();
  }

  private evictIdle(): void {
    const cutoff = Date.now() - IDLE_MS;
    for (const [eventId, stock] of this.stocks) if (stock.lastFresh < cutoff) this.drop(eventId);
    if (this.stocks.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Forgets the event's stock, closing and removing its spares (the event folder is going, or was remade). */
  drop(eventId: string): Promise<void> {
    const stock = this.stocks.get(eventId);
    if (!stock) return Promise.resolve();
    this.stocks.delete(eventId);
    stock.dropped = true;
    const spares = stock.spares.splice(0);
    return Promise.all(spares.map(discard)).then(() => undefined);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.stocks.keys()].map((id) => this.drop(id)));
  }
}

async function discard(spare: Spare): Promise<void> {
  await spare.fh.close().catch(() => undefined);
  await rm(spare.path, { force: true }).catch(() => undefined);
}
