import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import { GatewayError } from '../shared/errors.js';

const ALLOWED = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa', 'sk-ssh-ed25519@openssh.com']);

export interface PublicKeyInfo {
  /** The normalised OpenSSH line: `type base64 [comment]`. */
  line: string;
  type: string;
  /** `SHA256:` + unpadded base64, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** Parses one OpenSSH public key line (an `id_*.pub` file); private keys and DSA are refused. */
export function parsePublicKey(text: string): PublicKeyInfo {
  const line = text.trim().split('\n')[0]?.trim() ?? '';
  const parsed = ssh2.utils.parseKey(line);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!line || key instanceof Error || !key) throw new GatewayError('bad_request', 'not an OpenSSH public key (expected the contents of an id_*.pub file)');
  if (key.isPrivateKey()) throw new GatewayError('bad_request', 'that is a private key; give the .pub file');
  if (!ALLOWED.has(key.type)) throw new GatewayError('bad_request', `${key.type} keys are not accepted; use ed25519`);
  const fingerprint = 'SHA256:' + createHash('sha256').update(key.getPublicSSH()).digest('base64').replace(/=+$/, '');
  return { line, type: key.type, fingerprint };
}
