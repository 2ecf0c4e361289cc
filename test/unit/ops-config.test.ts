import test from 'ava';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const fails = (over: object, pattern: RegExp) => (t: import('ava').ExecutionContext) => {
  const err = t.throws(() => parseConfig(over as never), { instanceOf: ConfigError });
  t.regex(err!.message, pattern);
};

test('retention.schedule must be a node-cron expression', fails({ retention: { schedule: 'every day' } }, /^config: retention\.schedule: expected a node-cron expression/));
test('http.tls.redirectPort needs a certificate', fails({ http: { tls: { redirectPort: 8080 } } }, /^config: http\.tls\.redirectPort: needs http\.tls\.cert/));
test('auth.lockout.safelist takes addresses and CIDR ranges only', fails({ auth: { lockout: { safelist: ['10.0.0.0/8', 'example.com'] } } }, /^config: auth\.lockout\.safelist\.1: expected an IP address or a CIDR range/));
test('a seconds field is accepted, and the new keys have defaults', (t) => {
  const c = parseConfig({ retention: { schedule: '* * * * * *' }, auth: { lockout: { safelist: ['127.0.0.1', '2001:db8::/32'] } } });
  t.is(c.retention.schedule, '* * * * * *');
  t.deepEqual([c.http.tls.redirectPort, c.http.tls.hstsMaxAge, c.auth.lockout.userAttempts], [null, 31536000, 100]);
});
