import type { Readable } from 'node:stream';

/**
 * Blob storage for event caches. Names are ours (event id + generated blob id), never the user's
 * file names: paths, folders and renames live in the database, so no user input ever reaches the
 * filesystem or an object key. Local disk is the default; an S3 backend implements the same contract
 * and declares what it cannot do natively.
 */
export interface StorageCapabilities {
  /** Writes at arbitrary offsets into a temp blob (SFTP out-of-order writes). S3: false, use a spool. */
  randomWrite: boolean;
  /** Temp → final commit is an atomic rename. */
  atomicRename: boolean;
  /** Copies without streaming bytes through the gateway. */
  serverCopy: boolean;
  /** Temp blobs can be read while written (downloads that follow a live upload). */
  liveRead: boolean;
}

export interface ByteRange {
  start: number;
  /** Inclusive, as in HTTP Range. */
  end: number;
}

export interface TempWriter {
  /** Bytes currently in the temp blob. */
  readonly size: number;
  writeAt(data: Buffer, position: number): Promise<void>;
  /**
   * Streams `source` into the blob from `position`; stops with `onLimit()`'s error past `limit` bytes.
   * `observe` sees each batch once it is written, in order (hashing, progress).
   */
  appendStream(source: Readable, position: number, limit: number, onLimit: () => Error, observe?: (chunks: Buffer[], written: number) => void): Promise<number>;
  readAt(buffer: Buffer, position: number): Promise<number>;
  truncate(size: number): Promise<void>;
  /** Makes everything written so far durable. */
  sync(): Promise<void>;
  /**
   * A blob name this temp already has (made where blobs live, see spareTemps.ts), or null:
   * committing under it renames nothing.
   */
  readonly placedAs: string | null;
  /**
   * Durable commit of everything written: the temp becomes `blob` (replacing one of that name), its
   * data and name are flushed, the writer is closed. Visible to nobody until a row points at `blob`.
   */
  commit(blob: string): Promise<void>;
  /**
   * The temp becomes `blob` without a flush of its own, and the writer is closed: for a small file
   * whose bytes are made durable elsewhere (the database, see cache/journal.ts) until `flushAll`.
   */
  placeUnflushed(blob: string): Promise<void>;
  close(): Promise<void>;
}

export interface BlobReader {
  readonly size: number;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface StorageSpace {
  totalBytes: number;
  freeBytes: number;
}

/** One stored object as the sweeps see it: our own name, its size and when it last changed. */
export interface StoredItem {
  name: string;
  size: number;
  mtimeMs: number;
}

export interface StorageBackend {
  readonly name: string;
  readonly capabilities: StorageCapabilities;
  init(): Promise<void>;
  createContainer(eventId: string): Promise<void>;
  removeContainer(eventId: string): Promise<void>;
  /**
   * `fresh`: the temp is new (a generated id), so it is created exclusively and starts empty.
   * `ephemeral`: nothing resumes it after a restart, so it need not be findable by its id on disk
   * (only through this backend while it runs).
   */
  openTemp(eventId: string, tempId: string, fresh?: boolean, ephemeral?: boolean): Promise<TempWriter>;
  tempSize(eventId: string, tempId: string): Promise<number | null>;
  listTemps(eventId: string): Promise<string[]>;
  /**
   * Reads a temp blob while it is being written (followers of a live upload). On local disk the
   * handle stays valid after the commit renames the temp, so a follower reads to the end unbroken.
   */
  openTempReader(eventId: string, tempId: string): Promise<BlobReader>;
  discardTemp(eventId: string, tempId: string): Promise<void>;
  readStream(eventId: string, blob: string, range?: ByteRange): Readable;
  openReader(eventId: string, blob: string): Promise<BlobReader>;
  blobSize(eventId: string, blob: string): Promise<number | null>;
  copyBlob(eventId: string, source: string, target: string): Promise<void>;
  removeBlob(eventId: string, blob: string): Promise<void>;
  /** Makes everything written so far durable: data, names and folders (one flush of the file system). */
  flushAll(): Promise<void>;
  space(): Promise<StorageSpace>;
  /** Event containers present in storage (the retention sweep reconciles them with the database). */
  listContainers(): Promise<StoredItem[]>;
  /** Committed blobs of one container, temps excluded. */
  listBlobs(eventId: string): Promise<StoredItem[]>;
  /** Temps (partial uploads) of one container with their age. */
  listTempItems(eventId: string): Promise<StoredItem[]>;
  /** Releases what the backend keeps open between requests (at shutdown, after the protocols stopped). */
  close(): Promise<void>;
}
