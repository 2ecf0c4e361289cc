import { createRequire } from 'node:module';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { Connection, ClientInfo, Session } from 'ssh2';
import type { Authenticator } from '../../auth/Authenticator.js';
import type { EventService } from '../../cache/EventService.js';
import type { DomainBus, DomainEvent } from '../../cache/events.js';
import type { Logger } from '../../shared/log.js';
import { SSH_ALGORITHMS, SSH_IDENT } from './algorithms.js';
import { ConnectionAuth } from './auth.js';
import type { HostKey } from './hostKeys.js';
import { Operations } from './operations.js';
import { BufferPool, SftpSession, type SftpChannel } from './SftpSession.js';
import { MAX_PACKET } from './codec.js';
import { VirtualTree } from './tree.js';
import { recyclePackets, recycleReads } from './packetBuffers.js';

export interface SftpLimits {
  /** Time from TCP connect to a successful login (OpenSSH LoginGraceTime). */
  loginGraceMs: number;
  /** No SFTP request for this long: the connection is closed (keepalives do not count). */
  idleMs: number;
  maxAuthFailures: number;
  failureDelayMs: number;
  perIpConnections: number;
  unauthenticated: number;
  perIpUnauthenticated: number;
  sessionsPerConnection: number;
  handlesPerSession: number;
}

export const DEFAULT_SFTP_LIMITS: SftpLimits = {
  loginGraceMs: 30_000,
  idleMs: 15 * 60_000,
  maxAuthFailures: 6,
  failureDelayMs: 500,
  perIpConnections: 20,
  unauthenticated: 64,
  perIpUnauthenticated: 10,
  sessionsPerConnection: 4,
  handlesPerSession: 256,
};

export interface SftpServerDeps {
  auth: Authenticator;
  events: EventService;
  bus: DomainBus;
  log: Logger;
  hostKeys: HostKey[];
  limits?: Partial<SftpLimits>;
}

interface Conn {
  ip: string;
  socket: Socket;
  client: Connection | null;
  auth: ConnectionAuth | null;
  authenticated: boolean;
  sessions: number;
  trees: Set<VirtualTree>;
  lastActivity: number;
  grace: NodeJS.Timeout;
}

/**
 * The one SFTP endpoint for every event. Our own net.Server sits in front of ssh2 so connection
 * caps, the lockout check before any SSH byte, the login grace timer and the idle timer apply
 * (ssh2 has none of them); sockets are then handed over with injectSocket.
 */
export class SftpServer {
  private readonly limits: SftpLimits;
  private readonly ssh: ssh2.Server;
  private readonly net: NetServer;
  private readonly conns = new Map<string, Conn>();
  private readonly unsubscribe: () => void;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: SftpServerDeps) {
    this.limits = { ...DEFAULT_SFTP_LIMITS, ...deps.limits };
    this.ssh = new ssh2.Server(
      { hostKeys: deps.hostKeys.map((k) => k.pem), algorithms: SSH_ALGORITHMS, ident: SSH_IDENT, keepaliveInterval: 15_000, keepaliveCountMax: 4 },
      (client: Connection, info: ClientInfo) => this.onClient(client, info),
    );
    this.ssh.on('error', (err: Error) => deps.log.warn({ err }, 'sftp server error'));
    // noDelay: SFTP is request/response, and with Nagle on, a reply written while an earlier one was
    // still unacknowledged waited for the client's (delayed) ACK. 1 GiB uploads stalled to 50-130
    // MB/s with the CPU idle in most runs (464-723 with it); 4 KiB files 555 -> 716 files/s.
    this.net = createServer({ pauseOnConnect: true, noDelay: true }, (socket) =>
      this.onSocket(socket).catch((err: unknown) => {
        deps.log.error({ err }, 'sftp: cannot accept connection');
        socket.destroy();
      }),
    );
    this.unsubscribe = deps.bus.on((e) => this.onDomainEvent(e));
  }

  /** ssh2's native AES-GCM binding is worth 20-40% throughput (research §3.2); say so when it is missing. */
  private checkBinding(): void {
    try {
      const crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: boolean };
      if (!crypto.bindingAvailable) this.deps.log.warn('ssh2 native crypto binding not built: SFTP runs 20-40% slower (reinstall with install scripts enabled)');
    } catch {
      /* layout changed: nothing to report */
    }
  }

  async listen(port: number, host: string): Promise<number> {
    this.checkBinding();
    await new Promise<void>((resolve, reject) => {
      this.net.once('error', reject);
      this.net.listen(port, host, () => resolve());
    });
    const every = Math.max(50, Math.min(this.limits.idleMs / 4, 30_000));
    this.idleTimer = setInterval(() => this.reapIdle(), every);
    this.idleTimer.unref();
    return (this.net.address() as AddressInfo).port;
  }

  private key(ip: string | undefined, port: number | undefined): string {
    return `${ip}|${port}`;
  }

  private count(ip: string, onlyUnauthenticated: boolean): number {
    let n = 0;
    for (const c of this.conns.values()) if ((!ip || c.ip === ip) && (!onlyUnauthenticated || !c.authenticated)) n++;
    return n;
  }

  private async onSocket(socket: Socket): Promise<void> {
    const ip = socket.remoteAddress ?? '';
    socket.on('error', () => undefined);
    const l = this.limits;
    if (this.count(ip, false) >= l.perIpConnections || this.count('', true) >= l.unauthenticated || this.count(ip, true) >= l.perIpUnauthenticated) {
      socket.destroy();
      return;
    }
    const key = this.key(ip, socket.remotePort);
    // Only destroy the socket here: a grace handler that does more is how regreSSHion happened.
    const grace = setTimeout(() => socket.destroy(), l.loginGraceMs);
    const conn: Conn = { ip, socket, client: null, auth: null, authenticated: false, sessions: 0, trees: new Set(), lastActivity: Date.now(), grace };
    this.conns.set(key, conn);
    socket.once('close', () => {
      clearTimeout(grace);
      this.conns.delete(key);
    });
    // A locked-out address is refused before a single SSH byte is exchanged.
    if (await this.deps.auth.lockout.isBanned(ip)) {
      socket.destroy();
      return;
    }
    if (socket.destroyed) return;
    recyclePackets(socket);
    recycleReads(socket, () => conn.client);
    this.ssh.injectSocket(socket);
    socket.resume();
  }

  private onClient(client: Connection, info: ClientInfo): void {
    const conn = this.conns.get(this.key(info.ip, info.port));
    client.on('error', (err: Error) => this.deps.log.debug({ err: err.message }, 'sftp connection error'));
    if (!conn) {
      client.end();
      return;
    }
    conn.client = client;
    const auth = new ConnectionAuth(this.deps.auth, conn.ip, this.limits, this.deps.log, () => this.drop(conn));
    conn.auth = auth;
    client.on('authentication', (ctx) => auth.handle(ctx));
    client.on('ready', () => {
      conn.authenticated = true;
      conn.lastActivity = Date.now();
      clearTimeout(conn.grace);
    });
    client.on('session', (accept, reject) => {
      if (conn.sessions >= this.limits.sessionsPerConnection) return reject();
      conn.sessions++;
      this.onSession(conn, accept());
    });
    // Forwarding of any kind is refused; logged so operators see what clients try.
    client.on('tcpip', (_accept, reject, info) => this.refuse(conn, `direct-tcpip to ${info.destIP}:${info.destPort}`, reject));
    client.on('openssh.streamlocal', (_accept, reject) => this.refuse(conn, 'streamlocal forwarding', reject));
    client.on('request', (_accept, reject, name) => this.refuse(conn, `global request ${name}`, reject));
  }

  private refuse(conn: Conn, what: string, reject?: () => void): void {
    this.deps.log.info({ ip: conn.ip, user: conn.auth?.principal?.name }, `sftp: refused ${what}`);
    reject?.();
  }

  private onSession(conn: Conn, session: Session): void {
    session.on('close', () => conn.sessions--);
    for (const what of ['exec', 'shell', 'pty', 'env', 'x11', 'auth-agent', 'signal', 'window-change'] as const) {
      session.on(what as 'exec', (_accept: unknown, reject?: () => void) => this.refuse(conn, what, reject));
    }
    session.on('subsystem', (accept, reject, info) => {
      const principal = conn.auth?.principal;
      if (info.name !== 'sftp' || !principal) return this.refuse(conn, `subsystem ${info.name}`, reject);
      const channel = accept() as unknown as SftpChannel;
      const tree = new VirtualTree(this.deps.events, principal, { protocol: 'sftp', ip: conn.ip });
      conn.trees.add(tree);
      channel.on('close', () => conn.trees.delete(tree));
      // Sized for the largest packet either way: a WRITE of MAX_IO bytes carries its handle and offset
      // too, and a pool sized for READ replies (MAX_IO + 13) gave every WRITE a fresh 255 KiB buffer.
      const pool = new BufferPool(MAX_PACKET);
      const ops = new Operations(tree, this.limits.handlesPerSession, pool);
      new SftpSession(channel, ops, this.deps.log, () => (conn.lastActivity = Date.now()), pool, () => corkForTick(conn.socket)).start();
    });
  }

  /** Revocation and deletion take effect at once: affected connections are cut, caches dropped. */
  private onDomainEvent(e: DomainEvent): void {
    if (e.type !== 'recipient.revoked' && e.type !== 'event.deleted' && e.type !== 'event.closed') return;
    for (const conn of this.conns.values()) {
      const p = conn.auth?.principal;
      if (!p) continue;
      const cut = p.kind === 'recipient' && (e.type === 'recipient.revoked' ? p.id === e.recipientId : e.type === 'event.deleted' && p.eventId === e.eventId);
      if (cut) this.drop(conn);
      else for (const t of conn.trees) t.forget(e.eventId);
    }
  }

  private drop(conn: Conn): void {
    conn.client?.end();
    // end() waits for the peer; a revoked session must not linger.
    setTimeout(() => conn.socket.destroy(), 200).unref();
  }

  private reapIdle(): void {
    const now = Date.now();
    for (const conn of this.conns.values()) if (conn.authenticated && now - conn.lastActivity > this.limits.idleMs) this.drop(conn);
  }

  async close(graceMs: number): Promise<void> {
    this.unsubscribe();
    if (this.idleTimer) clearInterval(this.idleTimer);
    const closed = new Promise<void>((resolve) => this.net.close(() => resolve()));
    for (const conn of this.conns.values()) conn.client?.end();
    const timer = setTimeout(() => {
      for (const conn of this.conns.values()) conn.socket.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
  }
}

/** Corks `socket` until the end of the current tick (once per tick, however many callers). */
function corkForTick(socket: Socket): void {
  if (socket.writableCorked > 0 || socket.destroyed) return;
  socket.cork();
  process.nextTick(() => socket.uncork());
}
