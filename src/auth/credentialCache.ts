import { hmac } from '../shared/ids.js';

/**
 * Remembers successful verifications only, keyed by an HMAC of (subject, stored hash, secret) under a
 * server key: a WebDAV client sending Basic auth on every request costs one argon2 verify, not one
 * per request. Including the stored hash in the key makes a password change invalidate old entries
 * by construction; `forget` clears a subject at once on revoke, disable, close or expiry.
 */
export class CredentialCache {
  private readonly entries = new Map<string, { subject: string; expires: number }>();
  /** Verifications under way: concurrent requests with the same credential share one argon2 run. */
  private readonly inflight = new Map<string, Promise<boolean>>();

  constructor(private readonly key: Buffer, private readonly ttlMs: number, private readonly maxEntries = 10_000) {}

  private keyFor(subject: string, storedHash: string, secret: string): string {
    return hmac(this.key, `${subject}\u0000${storedHash}\u0000${secret}`);
  }

  has(subject: string, storedHash: string, secret: string, now = Date.now()): boolean {
    if (this.ttlMs === 0) return false;
    const k = this.keyFor(subject, storedHash, secret);
    const e = this.entries.get(k);
    if (!e) return false;
    if (e.expires <= now) {
      this.entries.delete(k);
      return false;
    }
    return true;
  }

  /**
   * True when the secret is known good, else runs `verify` once for all concurrent callers with the
   * same (subject, hash, secret): a client opening 32 connections at once costs one hash, not 32.
   */
  async verified(subject: string, storedHash: string, secret: string, verify: () => Promise<boolean>): Promise<boolean> {
    if (this.has(subject, storedHash, secret)) return true;
    const k = this.keyFor(subject, storedHash, secret);
    let pending = this.inflight.get(k);
    if (!pending) {
      pending = verify().then((ok) => {
        if (ok) this.remember(subject, storedHash, secret);
        return ok;
      });
      this.inflight.set(k, pending);
      const clear = () => this.inflight.delete(k);
      pending.then(clear, clear);
    }
    return pending;
  }

  remember(subject: string, storedHash: string, secret: string, now = Date.now()): void {
    if (this.ttlMs === 0) return;
    if (this.entries.size >= this.maxEntries) {
      // Map iteration is insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(this.keyFor(subject, storedHash, secret), { subject, expires: now + this.ttlMs });
  }

  forget(subject: string): void {
    for (const [k, e] of this.entries) if (e.subject === subject) this.entries.delete(k);
  }

}
