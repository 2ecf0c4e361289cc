import type { Apache } from '../peers/apache.js';
import type { Nginx } from '../peers/nginx.js';
import type { Peer } from '../peers/peer.js';
import type { Sshd } from '../peers/sshd.js';
import type { DurableFloor } from '../peers/durableFloor.js';
import type { BenchGateway } from '../gateway.js';
import type { Bench, PeerSide, Side } from '../lib/bench.js';
import { GiB, MiB } from '../lib/files.js';

export interface Sizes {
  runs: number;
  big: number;
  zipParts: number;
  zipPart: number;
  authRequests: number;
  authConnections: number;
  recipients: number;
  recipientFile: number;
  eventReps: number;
  manifestFiles: number;
  davSmallPuts: number;
  propfindFiles: number;
  sftpSmallFiles: number;
  /** Bound for any one client command. */
  timeoutMs: number;
}

export const FULL: Sizes = {
  runs: 3, big: GiB, zipParts: 20, zipPart: 50 * MiB, authRequests: 20_000, authConnections: 32, recipients: 50, recipientFile: 100 * MiB,
  eventReps: 100, manifestFiles: 1000, davSmallPuts: 2000, propfindFiles: 5000, sftpSmallFiles: 2000, timeoutMs: 10 * 60_000,
};

export const QUICK: Sizes = {
  runs: 3, big: 32 * MiB, zipParts: 20, zipPart: MiB, authRequests: 2000, authConnections: 32, recipients: 50, recipientFile: 2 * MiB,
  eventReps: 15, manifestFiles: 1000, davSmallPuts: 40, propfindFiles: 200, sftpSmallFiles: 40, timeoutMs: 60_000,
};

export interface Ctx {
  sizes: Sizes;
  /** The package root (dist/, node_modules/). */
  root: string;
  dir: string;
  g: BenchGateway;
  bench: Bench;
  nginx: Peer<Nginx>;
  apache: Peer<Apache>;
  sshd: Peer<Sshd>;
  /** Small durable PUTs with nothing else: what the flush alone allows. */
  durableFloor: Peer<DurableFloor>;
  /** Source files in the temp folder. */
  big: string;
  log: (line: string) => void;
  /** Basic credentials accepted by the nginx and Apache peers. */
  peerUser: { name: string; password: string };
}

/** The peer side of a comparison, or a skip naming why that peer is absent. */
export function peerSide<T>(peer: Peer<T>, name: string, run: (p: T) => Side): PeerSide {
  return peer.ok ? { name, run: run(peer.value) } : { name, skip: peer.reason };
}

/** Wraps a single-number run as a Side. */
export const one = (f: () => Promise<number>): Side => async () => [await f()];
