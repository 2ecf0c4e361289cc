import { createHmac } from 'node:crypto';
import type { Database } from '../db/Database.js';
import type { Logger } from '../shared/log.js';
import type { DomainBus, DomainEvent } from './events.js';

export interface NotifyConfig {
  /** Called for every event on the gateway, in addition to each event's own webhooks. */
  globalUrl: string | null;
  secret: string;
  timeoutMs: number;
  maxAttempts: number;
}

const afterThisTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Notifiable = Extract<DomainEvent, { type: 'event.completed' | 'file.downloaded' | 'file.state' }>;

/** Signature receivers verify: HMAC-SHA256 over `${t}.${body}` with the shared secret (Stripe-style). */
export function signature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Webhooks through a database outbox: domain events become delivery rows in the same process
 * that saw them, a worker posts them with retries and backoff, and nothing on the transfer path
 * ever waits for a receiver. Deliveries survive a restart.
 */
export class Notifier {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private unsubscribe: (() => void) | null = null;
  private queueing: Promise<void> = Promise.resolve();

  constructor(private readonly db: Database, private readonly bus: DomainBus, private readonly config: NotifyConfig, private readonly log: Logger) {}

  start(pollMs = 1000): void {
    this.unsubscribe = this.bus.on((e) => {
      const kind = e.type === 'file.state' ? (e.state === 'complete' ? 'file.completed' : null) : e.type === 'event.completed' || e.type === 'file.downloaded' ? e.type : null;
      // After a turn of the event loop: the domain event is emitted before the request that caused
      // it is answered, and looking up its webhooks need not delay that answer.
      if (kind) this.queueing = this.queueing.then(afterThisTurn).then(() => this.enqueue(kind, e as Notifiable)).catch((err) => this.log.error({ err }, 'webhook enqueue failed'));
    });
    this.timer = setInterval(() => void this.deliverDue(), pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.queueing;
  }

  private async enqueue(type: string, e: Notifiable): Promise<void> {
    const urls = (await this.db.query<{ url: string }>('SELECT url FROM event_webhooks WHERE event_id = ?', [e.eventId])).map((r) => r.url);
    if (this.config.globalUrl) urls.push(this.config.globalUrl);
    if (urls.length === 0) return;
    const data: Record<string, unknown> = { eventId: e.eventId };
    if (e.type === 'file.state') Object.assign(data, { path: e.path, size: e.size });
    if (e.type === 'file.downloaded') Object.assign(data, { path: e.path, who: e.who, protocol: e.protocol, bytes: e.bytes });
    const payload = JSON.stringify({ type, at: new Date(e.at).toISOString(), data });
    const now = Date.now();
    await this.db.transaction(async (tx) => {
      for (const url of urls) {
        await tx.run('INSERT INTO webhook_deliveries (url, event_type, payload, next_at, created_at) VALUES (?, ?, ?, ?, ?)', [url, type, payload, now, now]);
      }
    });
    void this.deliverDue();
  }

  /** One pass over due deliveries; overlapping passes are skipped. */
  async deliverDue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const due = await this.db.query<{ id: number; url: string; event_type: string; payload: string; attempts: number }>(
        'SELECT id, url, event_type, payload, attempts FROM webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ? ORDER BY next_at LIMIT 20',
        [Date.now()],
      );
      await Promise.all(due.map((d) => this.deliver(d)));
    } catch (err) {
      this.log.error({ err }, 'webhook delivery pass failed');
    } finally {
      this.running = false;
    }
  }

  private async deliver(d: { id: number; url: string; event_type: string; payload: string; attempts: number }): Promise<void> {
    const t = Math.floor(Date.now() / 1000);
    let error: string | null = null;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        redirect: 'error',
        signal: AbortSignal.timeout(this.config.timeoutMs),
        headers: { 'content-type': 'application/json', 'user-agent': 'Handoff-Webhook/1', 'handoff-event': d.event_type, 'handoff-delivery': String(d.id), 'handoff-signature': signature(this.config.secret, t, d.payload) },
        body: d.payload,
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) error = `HTTP ${res.status}`;
    } catch (err) {
      error = (err as Error).message;
    }
    const now = Date.now();
    if (error === null) {
      await this.db.run('UPDATE webhook_deliveries SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?', [now, d.id]);
      return;
    }
    const attempts = d.attempts + 1;
    const giveUp = attempts >= this.config.maxAttempts;
    // 2 s, 4 s, 8 s … capped at 10 minutes.
    const next = now + Math.min(600_000, 1000 * 2 ** attempts);
    await this.db.run('UPDATE webhook_deliveries SET attempts = ?, next_at = ?, last_error = ?, failed_at = ? WHERE id = ?', [attempts, next, error.slice(0, 500), giveUp ? now : null, d.id]);
    this.log.warn({ url: d.url, attempts, error, giveUp }, 'webhook delivery failed');
  }
}
