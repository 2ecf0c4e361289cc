/** Row shapes as stored. Repositories return these; services turn them into API shapes. */
export type Role = 'admin' | 'sender';
export type FileState = 'pending' | 'uploading' | 'complete' | 'failed' | 'removed';
export type NodeKind = 'file' | 'dir';

export interface UserRow {
  id: number;
  name: string;
  role: Role;
  password_hash: string | null;
  disabled: number;
  quota_bytes: number | null;
  max_ttl_ms: number | null;
  created_at: number;
  updated_at: number;
}

export interface EventRow {
  id: string;
  owner_id: number;
  title: string;
  created_at: number;
  expires_at: number;
  closed_at: number | null;
  purged_at: number | null;
  quota_bytes: number;
  used_bytes: number;
  reserved_bytes: number;
  completed_at: number | null;
}

export interface FileRow {
  id: number;
  event_id: string;
  path: string;
  parent: string;
  name: string;
  kind: NodeKind;
  size: number | null;
  bytes: number;
  sha256: string | null;
  actual_sha256: string | null;
  state: FileState;
  blob: string | null;
  mtime: number;
  created_at: number;
  updated_at: number;
}

export interface RecipientRow {
  id: number;
  event_id: string;
  name: string;
  username: string;
  password_hash: string | null;
  ssh_public_key: string | null;
  expires_at: number | null;
  max_downloads: number | null;
  downloads: number;
  revoked_at: number | null;
  last_access_at: number | null;
  created_at: number;
  /** Set by the retention job once the recipient's own expiry or download limit has passed. */
  expired_at: number | null;
}

export interface UploadRow {
  id: string;
  event_id: string;
  path: string;
  length: number | null;
  reserved: number;
  offset_bytes: number;
  sha256: string | null;
  protocol: string;
  created_by: string;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

export interface AccessLogRow {
  id: number;
  event_id: string;
  at: number;
  who: string;
  protocol: string;
  action: string;
  path: string | null;
  bytes: number | null;
  ip: string | null;
}
