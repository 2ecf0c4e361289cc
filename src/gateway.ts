import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
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
import { LiveTransfers } from './cache/live.js';
import type { Config } from './config/load.js';
import type { Database } from './db/Database.js';
import { migrate } from './db/migrate.js';
import { SqliteDatabase } from './db/sqlite.js';
import { createHttpApp } from './protocols/http/app.js';
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
  /** SFTP timeouts and caps (tests shorten them); defaults in protocols/sftp/server.ts. */
  sftpLimits?: Partial<SftpLimits>;
}

/**
 * The composition root: config → database → migrations → storage → services → protocols.
 * Nothing else wires components together, and nothing runs at import time.
 */
export class Gateway {
  readonly log: Logger;
  private httpServer: HttpServer | null = null;
  private sftpServer: SftpServer | null = null;
  private readonly sockets = new Set<Socket>();
  private publicUrlValue: string;
  private httpPort = 0;
  private sftpPort = 0;

  private constructor(
    readonly config: Config,
    readonly db: Database,
    readonly storage: StorageBackend,
    readonly hasher: PasswordHasher,
    readonly credentials: CredentialCache,
    readonly lockout: Lockout,
    readonly auth: Authenticator,
    readonly accounts: Accounts,
    readonly recorder: AccessRecorder,
    readonly events: EventService,
    log: Logger,
    private readonly announce: (line: string) => void,
    readonly deps: CacheDeps,
    private readonly sftpLimits: Partial<SftpLimits> = {},
  ) {
    this.log = log;
    this.publicUrlValue = config.publicUrl;
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
    const hasher = new PasswordHasher(config.auth.argon2, config.auth.maxConcurrentHashes);
    const credentials = new CredentialCache(randomBytes(32), config.auth.credentialCacheSeconds * 1000);
    const lockout = new Lockout(db, config.auth.lockout);
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
    const live = new LiveTransfers();
    const deps: CacheDeps = {
      db, storage, bus, recorder, live, hasher, credentials, addresses, log,
      limits: {
        defaultTtlMs: parseDuration(config.events.defaultTtl)!,
        maxTtlMs: parseDuration(config.events.maxTtl)!,
        maxQuotaBytes: config.events.maxQuotaBytes,
        quotaSlack: config.events.quotaSlack,
        maxFiles: config.events.maxFiles,
      },
    };
    const events = new EventService(deps);
    gateway = new Gateway(config, db, storage, hasher, credentials, lockout, auth, accounts, recorder, events, log, opts.announce ?? (() => undefined), deps, opts.sftpLimits);
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
      log: this.log,
      publicUrl: () => this.publicUrl,
      maxJsonBytes: this.config.http.maxJsonBytes,
      maxUploadBytes: this.config.events.maxQuotaBytes,
      assetsDir: join(packageRoot(), 'src', 'protocols', 'http'),
    });
    const tls = this.config.http.tls;
    const server = tls.cert && tls.key
      ? createHttpsServer({ cert: await readFile(tls.cert), key: await readFile(tls.key) }, app)
      : createHttpServer(app);
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
    await this.startSftp();
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
    const sftp = this.sftpServer;
    this.sftpServer = null;
    const sftpClosed = sftp?.close(graceMs);
    const server = this.httpServer;
    this.httpServer = null;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
    }
    await sftpClosed;
    await this.recorder.close();
    await this.db.close();
  }
}
