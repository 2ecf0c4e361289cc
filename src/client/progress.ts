import { basename } from 'node:path';
import { formatBytes, formatDuration } from './format.js';
import type { QueueState } from './queue.js';

/** Per-file and total progress bars for `send --wait`, with rate and ETA from a sliding window. */
export class ProgressView {
  private samples: Array<{ at: number; bytes: number }> = [];
  private lines = 0;
  private lastPlain = 0;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  render(state: QueueState, final = false): void {
    const now = Date.now();
    const total = state.files.reduce((n, f) => n + f.size, 0);
    const sent = state.files.reduce((n, f) => n + (f.state === 'done' ? f.size : f.bytes), 0);
    this.samples.push({ at: now, bytes: sent });
    while (this.samples.length > 2 && now - this.samples[0].at > 5000) this.samples.shift();
    const first = this.samples[0];
    const rate = now > first.at ? ((sent - first.bytes) * 1000) / (now - first.at) : 0;
    const eta = rate > 0 ? (total - sent) / rate : NaN;
    const rows = state.files.map((f) => {
      const bytes = f.state === 'done' ? f.size : f.bytes;
      const note = f.state === 'failed' ? `failed: ${f.error}` : f.state === 'retrying' ? `retrying (${f.error})` : f.state;
      return `${bar(bytes, f.size, 20)} ${pct(bytes, f.size)} ${formatBytes(bytes).padStart(10)} ${trim(basename(f.path), 32)}  ${note}`;
    });
    rows.push(`${bar(sent, total, 20)} ${pct(sent, total)} ${formatBytes(sent).padStart(10)} of ${formatBytes(total)}  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`);
    if (this.out.isTTY) {
      if (this.lines) this.out.write(`\x1b[${this.lines}A`);
      this.out.write(rows.map((r) => `\x1b[2K${r}\n`).join(''));
      this.lines = rows.length;
    } else if (final || now - this.lastPlain > 5000) {
      this.lastPlain = now;
      this.out.write(rows[rows.length - 1] + '\n');
    }
  }
}

function bar(n: number, of: number, width: number): string {
  const filled = of > 0 ? Math.round((Math.min(n, of) / of) * width) : width;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}
function pct(n: number, of: number): string {
  return `${of > 0 ? Math.floor((100 * Math.min(n, of)) / of) : 100}%`.padStart(4);
}
function trim(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n);
}
