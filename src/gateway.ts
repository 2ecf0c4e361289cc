import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { Accounts } from './auth/Accounts.js';
import { Authenticator } from './auth/Authenticator.js';
import { CredentialCache } from './auth/credentialCache.js';
import { Lockout } from './auth/lockout.js';
import { PasswordHasher } from './auth/passwords.js';
import { AccessRecorder } from './cache/accessRecorder.js';
import { LocalBackend } from './cache/backends/LocalBackend.js';
import type { StorageBackend } from './cache/backends/StorageBackend.js';
import type { Addresses, CacheDeps } from './cache/deps.js';
import { EventService } from './cache/EventService.js';
import { DomainBus } from './cache/events.js';
import { RetentionJob } from './cache/jobs.js';
import { LiveTransfers } from './cache/live.js';
import { Notifier } from './cache/notify.js';
import { Settler } from './cache/journal.js';
import { recover, type RecoveryReport } from './cache/recovery.js';
import { Reports } from './cache/Reports.js';
import { RecentAuthFailures } from './auth/recentFailures.js';
import { adminPanel, type AdminPanel } from './admin/router.js';
import type { Config } from './config/load.js';
import type { Database } from './db/Database.js';
import { migrate } from './db/migrate.js';
import { SqliteDatabase } from './db/sqlite.js';
import { createHttpApp } from './protocols/http/app.js';
import { createListener, createRedirectServer, reloadCertificate } from './protocols/http/listener.js';
import { davRouter } from './protocols/webdav/router.js';
import { loadHostKeys } from './protocols/sftp/hostKeys.js';
import { SftpServer, type SftpLimits } from './protocols/sftp/server.js';
import { parseDuration } from './shared/duration.js';
import { createLogger, type Logger } from './shared/log.js';
import { packageRoot } from './shared/packageRoot.js';

export const DEFAULT_PUBLIC_URL = 'http://localhost:8080';

export interface GatewayOptions {
  log?: Logger;
  /** Where the "listening on" lines go (stdout for `handoff serve`). */
  announce?: (line: string) => void;
  /**
   * Start-up recovery: `repair` (default; `handoff serve`, tests) fixes what a crash left,
   * `report` only counts (`handoff check`, safe beside a live server), `skip` for admin commands.
   */
  recovery?: 'repair' | 'report' | 'skip';
  /** SFTP timeouts and caps (tests shorten them); defaults in protocols/sftp/server.ts. */
  sftpLimits?: Partial<SftpLimits>;
}

/**
 * The composition root: config → database → migrations → storage → services → protocols.
 * Nothing else wires components together, and nothing runs at import time.
 */
/** Everything `create` builds before the gateway object exists. */
interface GatewayParts {
  db: Database;
  storage: StorageBackend;
  hasher: PasswordHasher;
  credentials: CredentialCache;
  lockout: Lockout;
  auth: Authenticator;
  accounts: Accounts;
  recorder: AccessRecorder;
  events: EventService;
  notifier: Notifier;
  reports: Reports;
  recentFailures: RecentAuthFailures;
  deps: CacheDeps;
  /** What start-up recovery found (null when skipped). */
  recovery: RecoveryReport | null;
}

export class Gateway {
  private httpServer: HttpServer | null = null;
  private redirectServer: HttpServer | null = null;
  private sftpServer: SftpServer | null = null;
  private readonly sockets = new Set<Socket>();
  readonly retention: RetentionJob;
  private publicUrlValue: string;
  private httpPort = 0;
  private sftpPort = 0;
  readonly db: Database;
  readonly storage: StorageBackend;
  readonly hasher: PasswordHasher;
  readonly credentials: CredentialCache;
  readonly lockout: Lockout;
  readonly auth: Authenticator;
  readonly accounts: Accounts;
  readonly recorder: AccessRecorder;
  readonly events: EventService;
  readonly notifier: Notifier;
  /** Read-side overviews and recent failed logins (admin panel). */
  readonly reports: Reports;
  readonly recentFailures: RecentAuthFailures;
  readonly deps: CacheDeps;
  readonly recovery: RecoveryReport | null;
  /** The admin panel once started (tests enumerate its router's routes). */
  adminPanel: AdminPanel | null = null;

  private constructor(
    readonly config: Config,
    parts: GatewayParts,
    readonly log: Logger,
    private readonly announce: (line: string) => void,
    private readonly sftpLimits: Partial<SftpLimits> = {},
  ) {
    ({
      db: this.db, storage: this.storage, hasher: this.hasher, credentials: this.credentials, lockout: this.lockout, auth: this.auth,
      accounts: this.accounts, recorder: this.recorder, events: this.events, notifier: this.notifier, reports: this.reports,
      recentFailures: this.recentFailures, deps: this.deps, recovery: this.recovery,
    } = parts);
    this.publicUrlValue = config.publicUrl;
    this.retention = new RetentionJob(parts.deps, parts.events, config.retention);
    this.retention.addPruner({ name: 'lockoutIdle', prune: () => parts.lockout.pruneIdle() });
  }

  /** Opens the database and storage and builds every service; `start()` then opens the ports. */
  static async create(config: Config, opts: GatewayOptions = {}): Promise<Gateway> {
    const log = opts.log ?? createLogger(config.log.level);
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(config.database.file!), { recursive: true, mode: 0o700 });
    const db = await SqliteDatabase.open(config.database.file!);
    await migrate(db);
    const storage = new LocalBackend(config.storage.root!);
    await storage.init();
    const mode = opts.recovery ?? 'repair';
    const recovery = mode === 'skip' ? null : await recover({ db, storage, log }, mode === 'repair');
    const hasher = new PasswordHasher(config.auth.argon2, config.auth.maxConcurrentHashes);
    const credentials = new CredentialCache(randomBytes(32), config.auth.credentialCacheSeconds * 1000);
    const lockout = new Lockout(db, config.auth.lockout, log);
    const bus = new DomainBus();
    const auth = new Authenticator(db, hasher, credentials, lockout, bus);
    const accounts = new Accounts(db, hasher, credentials);
    const recorder = new AccessRecorder(db, log);
    let gateway: Gateway | null = null;
    const addresses: Addresses = {
      web: (id) => `${gateway!.publicUrl}/e/${id}/`,
      webdav: (id) => `${gateway!.publicUrl}/dav/${id}/`,
      sftp: (id) => `sftp://${gateway!.sftpHost}:${gateway!.sftpPort || config.sftp.port}/${id}/`,
      sftpUser: (username) => `sftp://${encodeURIComponent(username)}@${gateway!.sftpHost}:${gateway!.sftpPort || config.sftp.port}/`,
    };
    const live = new LiveTransfers(bus);
    const recentFailures = new RecentAuthFailures();
    bus.on((e) => {
      if (e.type === 'auth.failed') recentFailures.push(e);
    });
    const deps: CacheDeps = {
      db, storage, bus, recorder, live, hasher, credentials, addresses, log, settler: new Settler(db, storage, (err) => log.error({ err }, 'flushing journaled small files failed; their records stay for recovery')),
      eventWebhooks: config.notifications.eventWebhooks,
      follow: { pendingWaitMs: config.live.pendingWaitSeconds * 1000, stallMs: config.live.stallSeconds * 1000 },
      limits: {
        defaultTtlMs: parseDuration(config.events.defaultTtl)!,
        maxTtlMs: parseDuration(config.events.maxTtl)!,
        maxQuotaBytes: config.events.maxQuotaBytes,
        quotaSlack: config.events.quotaSlack,
        maxFiles: config.events.maxFiles,
      },
    };
    const events = new EventService(deps);
    const notifier = new Notifier(
      db, bus,
      {
        globalUrl: config.notifications.webhookUrl,
        secret: config.notifications.secret ?? (await storedSecret(db, 'webhook-signing')),
        timeoutMs: config.notifications.timeoutSeconds * 1000,
        maxAttempts: config.notifications.maxAttempts,
      },
      log,
    );
    const parts: GatewayParts = {
      db, storage, hasher, credentials, lockout, auth, accounts, recorder, events, notifier, reports: new Reports(deps, events), recentFailures, deps, recovery,
    };
    gateway = new Gateway(config, parts, log, opts.announce ?? (() => undefined), opts.sftpLimits);
    return gateway;
  }

  get bus(): DomainBus {
    return this.deps.bus;
  }

  get live(): LiveTransfers {
    return this.deps.live;
  }

  get publicUrl(): string {
    return this.publicUrlValue;
  }

  get sftpHost(): string {
    return new URL(this.publicUrlValue).hostname;
  }

  get httpUrl(): string {
    const scheme = this.config.http.tls.cert ? 'https' : 'http';
    return `${scheme}://${this.config.http.host}:${this.httpPort}`;
  }

  get ports(): { http: number; sftp: number } {
    return { http: this.httpPort, sftp: this.sftpPort };
  }

  async start(): Promise<void> {
    const app = createHttpApp({
      auth: this.auth,
      events: this.events,
      bus: this.bus,
      log: this.log,
      publicUrl: () => this.publicUrl,
      maxJsonBytes: this.config.http.maxJsonBytes,
      maxUploadBytes: this.config.events.maxQuotaBytes,
      assetsDir: join(packageRoot(), 'src', 'protocols', 'http'),
      mounts: [
        { path: '/admin', handler: (this.adminPanel = this.buildAdminPanel()).router },
        { path: '/dav', handler: davRouter({ auth: this.auth, events: this.events, log: this.log }) },
      ],
    });
    const tls = this.config.http.tls;
    const server = await createListener(app, tls);
    server.headersTimeout = 30_000;
    server.requestTimeout = 0; // long uploads; idle sockets are reaped by keepAliveTimeout and the OS
    server.keepAliveTimeout = 15_000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.http.port, this.config.http.host, () => resolve());
    });
    this.httpServer = server;
    this.httpPort = (server.address() as AddressInfo).port;
    // With an OS-chosen port and no publicUrl of the operator's, hand out the address we really serve.
    if (this.config.http.port === 0 && this.config.publicUrl === DEFAULT_PUBLIC_URL) this.publicUrlValue = this.httpUrl;
    this.announce(`http listening on ${this.httpUrl}`);
    if (tls.redirectPort !== null) await this.startRedirect(tls.redirectPort);
    await this.startSftp();
    this.retention.start();
    this.notifier.start();
  }

  private async startRedirect(port: number): Promise<void> {
    const server = createRedirectServer(() => this.publicUrl);
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.http.host, () => resolve());
    });
    this.redirectServer = server;
    this.announce(`http redirect listening on http://${this.config.http.host}:${(server.address() as AddressInfo).port}`);
  }

  /** SIGHUP: re-reads the TLS certificate and key; other servers and open connections are untouched. */
  async reload(): Promise<void> {
    const tls = this.config.http.tls;
    if (!this.httpServer || !tls.cert) {
      this.log.info('reload: nothing to reload (no TLS certificate configured)');
      return;
    }
    try {
      await reloadCertificate(this.httpServer, tls);
      this.log.info({ cert: tls.cert }, 'tls certificate reloaded');
    } catch (err) {
      this.log.error({ err, cert: tls.cert }, 'tls reload failed; keeping the previous certificate');
      throw err;
    }
  }

  private buildAdminPanel(): AdminPanel {
    return adminPanel({
      db: this.db, auth: this.auth, accounts: this.accounts, events: this.events, reports: this.reports, lockout: this.lockout,
      recentFailures: this.recentFailures, bus: this.bus, log: this.log,
      publicUrl: () => this.publicUrl,
      secure: Boolean(this.config.http.tls.cert) || this.config.publicUrl.startsWith('https:'),
      assetsDir: join(packageRoot(), 'src', 'admin'),
      idleMs: 30 * 60_000,
      absoluteMs: 12 * 3_600_000,
    });
  }

  private async startSftp(): Promise<void> {
    const hostKeys = await loadHostKeys(this.config.sftp.hostKeys, this.config.dataDir);
    const sftp = new SftpServer({ auth: this.auth, events: this.events, bus: this.bus, log: this.log, hostKeys, limits: this.sftpLimits });
    this.sftpPort = await sftp.listen(this.config.sftp.port, this.config.sftp.host);
    this.sftpServer = sftp;
    this.announce(`sftp listening on ${this.config.sftp.host}:${this.sftpPort}`);
    for (const k of hostKeys) this.announce(`sftp host key ${k.type} ${k.fingerprint}`);
  }

  /** Stops accepting, lets transfers finish for `graceMs`, then cuts what remains and closes the database. */
  async stop(graceMs = 5000): Promise<void> {
    // Every step is bounded: a stuck step is logged and skipped, so shutdown (and a test's teardown) always ends.
    const step = (what: string, p: Promise<unknown> | undefined, ms: number) => bounded(p, ms, () => this.log.warn({ step: what, ms }, 'shutdown step timed out'));
    const sftp = this.sftpServer;
    this.sftpServer = null;
    const sftpClosed = sftp?.close(graceMs);
    await step('retention', this.retention.stop(), graceMs + 1000);
    const redirect = this.redirectServer;
    this.redirectServer = null;
    if (redirect) await step('redirect', new Promise<void>((resolve) => redirect.close(() => resolve())), graceMs + 1000);
    const server = this.httpServer;
    this.httpServer = null;
    this.adminPanel?.close();
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, graceMs);
      await step('http', closed, graceMs + 2000);
      clearTimeout(timer);
      for (const s of this.sockets) s.destroy();
    }
    await step('notifier', this.notifier.stop(), 2000);
    await step('sftp', sftpClosed, graceMs + 2000);
    // Handlers of requests cut above may still be recording what they stored (tus offsets).
    await this.db.settle(100, Math.min(2000, graceMs + 100));
    await step('access log', this.recorder.close(), 3000);
    await step('journaled files', this.deps.settler.flush(), 10_000);
    await step('storage', this.storage.close(), 3000);
    await step('database', this.db.close(), 3000);
  }
}

function bounded(p: Promise<unknown> | undefined, ms: number, onTimeout: () => void): Promise<void> {
  if (!p) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      onTimeout();
      resolve();
    }, ms);
    p.then(
      () => (clearTimeout(timer), resolve()),
      () => (clearTimeout(timer), resolve()),
    );
  });
}

/** A secret generated once and kept in the database (webhook signing when the config names none). */
async function storedSecret(db: Database, name: string): Promise<string> {
  const row = await db.get<{ value: string }>('SELECT value FROM secrets WHERE name = ?', [name]);
  if (row) return row.value;
  const value = randomBytes(32).toString('base64url');
  await db.run('INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [name, value]);
  return (await db.get<{ value: string }>('SELECT value FROM secrets WHERE name = ?', [name]))!.value;
}
