import type { DomainEvent } from '../cache/events.js';

export type AuthFailure = Extract<DomainEvent, { type: 'auth.failed' }>;

/**
 * The last failed logins across every protocol, for the dashboard. Kept in memory only: the
 * lockout table holds what must survive a restart (scores and bans); this is the recent story.
 */
export class RecentAuthFailures {
  private readonly items: AuthFailure[] = [];
  constructor(private readonly capacity = 100) {}

  push(e: AuthFailure): void {
    this.items.push(e);
    if (this.items.length > this.capacity) this.items.shift();
  }

  /** Newest first. */
  list(limit = this.capacity): AuthFailure[] {
    return this.items.slice(-limit).reverse();
  }
}
