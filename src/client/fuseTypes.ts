/** The slice of fuse-native's API the mount uses (it ships no types). Loaded lazily: the rest of the CLI runs without libfuse. */
export interface FuseStat {
  mtime: Date;
  atime: Date;
  ctime: Date;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  nlink?: number;
}
type Cb = (code: number) => void;
export interface FuseOps {
  readdir(path: string, cb: (code: number, names?: string[]) => void): void;
  getattr(path: string, cb: (code: number, stat?: FuseStat) => void): void;
  fgetattr(path: string, fd: number, cb: (code: number, stat?: FuseStat) => void): void;
  open(path: string, flags: number, cb: (code: number, fd?: number) => void): void;
  create(path: string, mode: number, cb: (code: number, fd?: number) => void): void;
  read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb): void;
  write(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb): void;
  release(path: string, fd: number, cb: Cb): void;
  truncate(path: string, size: number, cb: Cb): void;
  ftruncate(path: string, fd: number, size: number, cb: Cb): void;
  unlink(path: string, cb: Cb): void;
  mkdir(path: string, mode: number, cb: Cb): void;
  rmdir(path: string, cb: Cb): void;
  rename(src: string, dest: string, cb: Cb): void;
  statfs(path: string, cb: (code: number, s?: Record<string, number>) => void): void;
  utimens(path: string, atime: number, mtime: number, cb: Cb): void;
  chmod(path: string, mode: number, cb: Cb): void;
  chown(path: string, uid: number, gid: number, cb: Cb): void;
  flush(path: string, fd: number, cb: Cb): void;
  fsync(path: string, datasync: number, fd: number, cb: Cb): void;
  getxattr(path: string, name: string, position: number, cb: (code: number, value?: Buffer) => void): void;
  listxattr(path: string, cb: (code: number, names?: string[]) => void): void;
}
export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
export interface FuseModule {
  new (mnt: string, ops: Partial<FuseOps>, opts: Record<string, unknown>): FuseInstance;
  ENOENT: number;
  EIO: number;
  EEXIST: number;
  ENOTEMPTY: number;
  EISDIR: number;
  ENOTDIR: number;
  EXDEV: number;
  EACCES: number;
  EROFS: number;
  ENOSPC: number;
  EBADF: number;
  EPERM: number;
}
