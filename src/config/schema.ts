import { isIP } from 'node:net';
import cron from 'node-cron';
import { z } from 'zod';
import { parseDuration } from '../shared/duration.js';

const port = z.number().int().min(0).max(65535);
const duration = z.string().refine((v) => parseDuration(v) !== null, { message: 'expected a duration like 90s, 12h or 7d' });
const nullablePath = z.string().min(1).nullable();

/** Every key of config/default.json. `.strict()` everywhere: an unknown key stops start-up. */
export const configSchema = z
  .object({
    dataDir: z.string().min(1),
    publicUrl: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
    http: z
      .object({
        host: z.string().min(1),
        port,
        tls: z
          .object({
            cert: nullablePath,
            key: nullablePath,
            redirectPort: port.nullable(),
            hstsMaxAge: z.number().int().min(0),
          })
          .strict(),
        trustProxy: z.boolean(),
        maxJsonBytes: z.number().int().positive(),
      })
      .strict(),
    sftp: z.object({ host: z.string().min(1), port, hostKeys: z.array(z.string().min(1)) }).strict(),
    storage: z.object({ driver: z.enum(['local']), root: nullablePath }).strict(),
    database: z.object({ driver: z.enum(['sqlite']), file: nullablePath }).strict(),
    events: z
      .object({
        defaultTtl: duration,
        maxTtl: duration,
        maxQuotaBytes: z.number().int().positive(),
        quotaSlack: z.number().int().min(0),
        maxFiles: z.number().int().positive(),
      })
      .strict(),
    retention: z
      .object({
        schedule: z.string().min(1).refine((v) => cron.validate(v), { message: 'expected a node-cron expression like "*/15 * * * *"' }),
        auditDays: z.number().int().positive(),
        partialUploadHours: z.number().positive(),
      })
      .strict(),
    auth: z
      .object({
        lockout: z
          .object({
            attempts: z.number().int().positive(),
            userAttempts: z.number().int().positive(),
            windowSeconds: z.number().int().positive(),
            banSeconds: z.number().int().positive(),
            safelist: z.array(
              z.string().refine((v) => {
                const [addr, bits] = v.split('/');
                return isIP(addr) !== 0 && (bits === undefined || /^\d{1,3}$/.test(bits));
              }, { message: 'expected an IP address or a CIDR range like 10.0.0.0/8' }),
            ),
          })
          .strict(),
        argon2: z
          .object({
            memoryCost: z.number().int().min(1024),
            timeCost: z.number().int().min(1),
            parallelism: z.number().int().min(1),
          })
          .strict(),
        credentialCacheSeconds: z.number().int().min(0),
        maxConcurrentHashes: z.number().int().positive(),
      })
      .strict(),
    live: z.object({ pendingWaitSeconds: z.number().min(0), stallSeconds: z.number().positive() }).strict(),
    notifications: z
      .object({
        webhookUrl: z.url({ protocol: /^https?$/ }).nullable(),
        secret: z.string().min(16).nullable(),
        eventWebhooks: z.boolean(),
        timeoutSeconds: z.number().positive(),
        maxAttempts: z.number().int().positive(),
      })
      .strict(),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) }).strict(),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
