import { EventEmitter } from 'node:events';
import type { Protocol } from '../auth/principal.js';
import type { FileState } from '../db/repos/rows.js';

/** Typed domain events on one bus: the access log, live progress and webhooks subscribe. */
export type DomainEvent =
  | { type: 'event.created'; at: number; eventId: string; by: string }
  | { type: 'event.closed'; at: number; eventId: string }
  | { type: 'event.deleted'; at: number; eventId: string }
  | { type: 'file.state'; at: number; eventId: string; path: string; state: FileState; bytes: number; size: number | null }
  | { type: 'file.progress'; at: number; eventId: string; path: string; bytes: number; size: number | null }
  | { type: 'file.downloaded'; at: number; eventId: string; path: string | null; who: string; protocol: Protocol; bytes: number }
  | { type: 'event.completed'; at: number; eventId: string }
  | { type: 'recipient.revoked'; at: number; eventId: string; recipientId: number }
  | { type: 'auth.failed'; at: number; username: string | null; protocol: Protocol; ip: string };

type Listener = (e: DomainEvent) => void;

export class DomainBus {
  private readonly emitter = new EventEmitter();
  constructor() {
    this.emitter.setMaxListeners(0);
  }
  emit(e: DomainEvent): void {
    this.emitter.emit('event', e);
  }
  on(listener: Listener): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
