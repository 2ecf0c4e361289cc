/** Who is acting, whatever the protocol. */
export type Principal =
  | { kind: 'admin'; id: number; name: string }
  | { kind: 'sender'; id: number; name: string }
  | { kind: 'recipient'; id: number; name: string; eventId: string };

export type Protocol = 'http' | 'api' | 'tus' | 'webdav' | 'sftp' | 'admin' | 'cli';

/** Where a request comes from; carried into every FileSession for the access log. */
export interface RequestContext {
  protocol: Protocol;
  ip: string;
}
