import ssh2 from 'ssh2';
import type { AuthContext } from 'ssh2';
import type { Authenticator } from '../../auth/Authenticator.js';
import type { Principal } from '../../auth/principal.js';
import type { Logger } from '../../shared/log.js';

const { utils } = ssh2;
const METHODS: Array<'publickey' | 'password'> = ['publickey', 'password'];

/** Does an OpenSSH public key line match the key the client presented (type and blob)? */
export function keyMatcher(algo: string, data: Buffer): (stored: string) => boolean {
  return (stored) =>
    stored
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .some((line) => {
        const parsed = utils.parseKey(line);
        const key = Array.isArray(parsed) ? parsed[0] : parsed;
        return !(key instanceof Error) && Boolean(key) && key.type === algo && key.getPublicSSH().equals(data);
      });
}

function verifySignature(stored: string, ctx: Extract<AuthContext, { method: 'publickey' }>): boolean {
  for (const line of stored.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const parsed = utils.parseKey(line);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key instanceof Error || !key || key.type !== ctx.key.algo || !key.getPublicSSH().equals(ctx.key.data)) continue;
    return key.verify(ctx.blob!, ctx.signature!, ctx.hashAlgo) === true;
  }
  return false;
}

export interface AuthLimits {
  maxAuthFailures: number;
  failureDelayMs: number;
}

/**
 * Authentication for one SSH connection, only through the shared Authenticator: lockout, dummy
 * verifies and the credential cache live there. Here: a per-connection failure cap with a delay
 * (ssh2 has neither), and refusing SHA-1 `ssh-rsa` signatures.
 */
export class ConnectionAuth {
  private failures = 0;
  principal: Principal | null = null;

  constructor(
    private readonly auth: Authenticator,
    private readonly ip: string,
    private readonly limits: AuthLimits,
    private readonly log: Logger,
    private readonly disconnect: () => void,
  ) {}

  handle(ctx: AuthContext): void {
    this.decide(ctx).catch((err: unknown) => {
      this.log.error({ err }, 'sftp authentication error');
      ctx.reject();
      this.disconnect();
    });
  }

  private async decide(ctx: AuthContext): Promise<void> {
    const rc = { protocol: 'sftp' as const, ip: this.ip };
    if (ctx.method === 'password') {
      const r = await this.auth.password(ctx.username, ctx.password, rc);
      return r.ok ? this.accept(ctx, r.principal) : this.fail(ctx, r.reason === 'locked');
    }
    if (ctx.method === 'publickey') {
      if (ctx.key.algo === 'ssh-rsa' && ctx.signature && ctx.hashAlgo !== 'sha256' && ctx.hashAlgo !== 'sha512') return this.fail(ctx, false);
      if (!ctx.signature) {
        // A query ("would you take this key?") is not a failed login: clients offer keys one by one.
        return (await this.auth.publicKeyKnown(ctx.username, keyMatcher(ctx.key.algo, ctx.key.data), rc)) ? ctx.accept() : ctx.reject(METHODS);
      }
      const r = await this.auth.publicKey(ctx.username, (stored) => verifySignature(stored, ctx), rc);
      return r.ok ? this.accept(ctx, r.principal) : this.fail(ctx, r.reason === 'locked');
    }
    ctx.reject(METHODS);
  }

  private accept(ctx: AuthContext, principal: Principal): void {
    this.principal = principal;
    ctx.accept();
  }

  private async fail(ctx: AuthContext, locked: boolean): Promise<void> {
    this.failures++;
    if (locked || this.failures >= this.limits.maxAuthFailures) {
      ctx.reject();
      this.disconnect();
      return;
    }
    await new Promise((r) => setTimeout(r, this.limits.failureDelayMs));
    ctx.reject(METHODS);
  }
}
