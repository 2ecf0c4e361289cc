import type { Database } from '../db/Database.js';
import type { Logger } from '../shared/log.js';
import type { PasswordHasher } from '../auth/passwords.js';
import type { CredentialCache } from '../auth/credentialCache.js';
import type { StorageBackend } from './backends/StorageBackend.js';
import type { AccessRecorder } from './accessRecorder.js';
import type { DomainBus } from './events.js';
import type { LiveTransfers } from './live.js';
import type { FollowLimits } from './follow.js';
import type { Settler } from './journal.js';

export interface EventLimits {
  defaultTtlMs: number;
  maxTtlMs: number;
  maxQuotaBytes: number;
  quotaSlack: number;
  maxFiles: number;
}

/** Where an event can be reached; ports are known only after the servers listen. */
export interface Addresses {
  web(eventId: string): string;
  webdav(eventId: string): string;
  sftp(eventId: string): string;
  sftpUser(username: string): string;
}

/** Everything the domain layer needs, built once in gateway.ts and passed in (no singletons). */
export interface CacheDeps {
  db: Database;
  storage: StorageBackend;
  bus: DomainBus;
  recorder: AccessRecorder;
  live: LiveTransfers;
  limits: EventLimits;
  follow: FollowLimits;
  /** Senders may attach webhook URLs to their events. */
  eventWebhooks: boolean;
  hasher: PasswordHasher;
  credentials: CredentialCache;
  addresses: Addresses;
  log: Logger;
  /** Flushes journaled small files' blobs in batches and drops their records (journal.ts). */
  settler: Settler;
}
