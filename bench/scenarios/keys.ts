import { SFTP_METRICS } from './sftp.js';
import { WEBDAV_METRICS } from './webdav.js';

/** Every key results.json carries, in table order (a test checks them). */
export const SCENARIOS = [
  'tus-upload-1g', 'http-download-1g', 'zip-20x50m', 'auth-get-4k', 'auth-get-4k-p99', 'auth-get-4k-argon2', 'concurrent-50x100m',
  'event-create-1000-p50', 'event-create-1000-p99', ...WEBDAV_METRICS.map((m) => m.key), ...SFTP_METRICS.map((m) => m.key),
];
