/**
 * Runs autocannon in this (child) process and prints one JSON line: responses by class, p99 latency
 * and the time from start to the last response. autocannon's own `duration` ends at its next
 * once-a-second tick after the last response, so a 3.2 s run reads 4.02 s: rates came out in
 * steps of 20000/n (6,623 or 4,975 req/s for nginx, nothing between).
 * Usage: node cannon.js URL CONNECTIONS AMOUNT AUTHORIZATION
 */
import { createRequire } from 'node:module';

interface Result {
  '2xx': number;
  non2xx: number;
  errors: number;
  latency: { p99: number };
}
interface Instance {
  on(event: 'response', listener: () => void): void;
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: Result) => void) => Instance;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
const [url, connections, amount, authorization] = process.argv.slice(2);
const started = process.hrtime.bigint();
let last = started;
const instance = autocannon(
  { url, connections: Number(connections), amount: Number(amount), timeout: 30, headers: { authorization } },
  (err, result) => {
    if (err) {
      console.error(err.message);
      process.exit(1);
    }
    const seconds = Number(last - started) / 1e9;
    console.log(JSON.stringify({ ok: result['2xx'], non2xx: result.non2xx, errors: result.errors, p99: result.latency.p99, seconds }));
  },
);
instance.on('response', () => {
  last = process.hrtime.bigint();
});
