import type { Service } from '../lib/proc.js';

/** A reference server started for the run, or why it could not be. */
export type Peer<T> = { ok: true; value: T; svc: Service; version: string } | { ok: false; reason: string };

export function missing(binary: string, pkg: string): { ok: false; reason: string } {
  return { ok: false, reason: `${binary} not found: apt-get install ${pkg}` };
}

export function failed(name: string, err: unknown): { ok: false; reason: string } {
  return { ok: false, reason: `${name} did not start: ${(err as Error).message.slice(0, 300)}` };
}
