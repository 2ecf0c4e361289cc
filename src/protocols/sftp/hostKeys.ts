import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { GatewayError } from '../../shared/errors.js';

const { utils } = ssh2;

export interface HostKey {
  pem: Buffer;
  type: string;
  /** OpenSSH style: `SHA256:` + unpadded base64 of the public key blob. */
  fingerprint: string;
}

export const GENERATED_KEY_FILE = 'sftp_host_ed25519_key';

function describeKey(pem: Buffer, source: string): HostKey {
  const parsed = utils.parseKey(pem);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || !key) throw new GatewayError('bad_request', `sftp.hostKeys: cannot read ${source}`);
  // ssh2 would also offer SHA-1 `ssh-rsa` signatures for an RSA key, whatever the algorithm list says.
  if (key.type === 'ssh-rsa' || key.type === 'ssh-dss') {
    throw new GatewayError('bad_request', `sftp.hostKeys: ${source} is ${key.type}; use an ed25519 or ECDSA key`);
  }
  const fingerprint = 'SHA256:' + createHash('sha256').update(key.getPublicSSH()).digest('base64').replace(/=+$/, '');
  return { pem, type: key.type, fingerprint };
}

/**
 * ssh2 (1.17) drops leading zero bytes when it encodes an ed25519 key (about 1 key in 128 comes
 * out malformed): keep the first pair that parses and signs, so a start-up never fails on chance.
 */
export function generateEd25519(attempts = 20): { private: string; public: string } {
  const probe = Buffer.from('handoff host key self-test');
  for (let i = 0; i < attempts; i++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'handoff sftp host key' });
    const parsed = utils.parseKey(pair.private);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!key || key instanceof Error) continue;
    const signature = key.sign(probe);
    if (!(signature instanceof Error) && key.verify(probe, signature) === true) return pair;
  }
  throw new Error(`could not generate a well-formed ed25519 host key in ${attempts} attempts`);
}

/** The configured PEM files, or one ed25519 key generated once under dataDir and kept. */
export async function loadHostKeys(files: string[], dataDir: string): Promise<HostKey[]> {
  if (files.length) return Promise.all(files.map(async (f) => describeKey(await readFile(f), f)));
  const file = join(dataDir, GENERATED_KEY_FILE);
  try {
    return [describeKey(await readFile(file), file)];
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
  }
  const pair = generateEd25519();
  try {
    await writeFile(file, pair.private, { mode: 0o600, flag: 'wx' });
    await writeFile(`${file}.pub`, pair.public + '\n', { mode: 0o644, flag: 'wx' });
  } catch (err) {
    // Another process made it first: use theirs.
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  }
  return [describeKey(await readFile(file), file)];
}
