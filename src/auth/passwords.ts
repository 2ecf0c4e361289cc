import { randomBytes } from 'node:crypto';
import type argon2Type from 'argon2';
import { GatewayError } from '../shared/errors.js';
import { Semaphore } from '../shared/semaphore.js';
import { requireNative } from '../shared/native.js';

export const MAX_SECRET_BYTES = 1024;

function loadArgon2(): typeof argon2Type {
  return requireNative<typeof argon2Type>('argon2');
}

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/**
 * argon2id hashing with a bound on concurrent work: on 2 cores an unbounded number of parallel
 * verifications would starve every transfer. Secrets over 1 KiB are refused before hashing.
 */
export class PasswordHasher {
  private readonly argon2 = loadArgon2();
  private readonly gate: Semaphore;
  private dummy: Promise<string> | null = null;
  verifications = 0;

  constructor(private readonly params: Argon2Params, maxConcurrent: number) {
    this.gate = new Semaphore(maxConcurrent);
  }

  static checkLength(secret: string): void {
    if (Buffer.byteLength(secret) > MAX_SECRET_BYTES) throw new GatewayError('bad_request', 'secret longer than 1 KiB');
  }

  hash(secret: string): Promise<string> {
    PasswordHasher.checkLength(secret);
    return this.gate.run(() => this.argon2.hash(secret, { type: this.argon2.argon2id, ...this.params }));
  }

  async verify(hash: string, secret: string): Promise<boolean> {
    if (Buffer.byteLength(secret) > MAX_SECRET_BYTES) return false;
    this.verifications++;
    return this.gate.run(async () => {
      try {
        return await this.argon2.verify(hash, secret);
      } catch {
        return false;
      }
    });
  }

  /** Same cost as a real verify, so unknown and disabled users take as long as known ones. */
  async dummyVerify(secret: string): Promise<void> {
    this.dummy ??= this.hash(randomBytes(16).toString('hex'));
    await this.verify(await this.dummy, secret.slice(0, MAX_SECRET_BYTES));
  }
}
