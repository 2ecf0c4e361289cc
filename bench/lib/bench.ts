import { median, round } from './stats.js';
import { resetPeak, run, sample } from './proc.js';

/**
 * Writes dirty pages left by the previous run back to disk before the next one starts. Without it
 * the peer's unflushed GiB (nginx, Apache and OpenSSH never fsync) was still being written while
 * the gateway's next upload ran, and the gateway, which fsyncs before it answers, paid for both.
 */
async function settleDisk(): Promise<void> {
  await run('sync', [], { timeoutMs: 120_000 }).catch(() => undefined);
}

export interface Row {
  gateway: number | null;
  peer: number | null;
  unit: string;
  /** gateway / peer of the medians, in the row's unit (so below 1 is slower for a rate, faster for a time). */
  ratio: number | null;
  /** Gateway peak RSS during the scenario's gateway runs, MB (10^6 bytes). */
  rssMB: number | null;
  /** Gateway CPU time per run (median), seconds. */
  cpuSeconds: number | null;
  peerName: string | null;
  runs: { gateway: number[]; peer: number[] };
  /** The whole row did not run, and why. */
  skipped?: string;
  /** Only the peer side did not run, and why. */
  peerSkipped?: string;
  note?: string;
}

export interface Metric {
  key: string;
  unit: string;
  note?: string;
}

/** A side of a comparison: one run returns one number per metric. */
export type Side = () => Promise<number[]>;
export type PeerSide = { name: string; run: Side } | { name: string; skip: string } | null;

/**
 * Runs scenarios against the gateway (and a peer) alternately, `runs` times, keeping the median of
 * each and the gateway's peak RSS and CPU time. A failing scenario marks its rows, never the run.
 */
export class Bench {
  readonly rows: Record<string, Row> = {};

  constructor(private readonly gatewayPid: number, private readonly runs: number, private readonly log: (line: string) => void) {}

  skip(metrics: Metric[], reason: string, peerName: string | null = null): void {
    for (const m of metrics) {
      this.rows[m.key] = { gateway: null, peer: null, unit: m.unit, ratio: null, rssMB: null, cpuSeconds: null, peerName, runs: { gateway: [], peer: [] }, skipped: reason, ...(m.note ? { note: m.note } : {}) };
    }
    this.log(`  skipped ${metrics.map((m) => m.key).join(', ')}: ${reason}`);
  }

  async compare(metrics: Metric[], gateway: Side, peer: PeerSide, opts: { runs?: number } = {}): Promise<void> {
    const runs = opts.runs ?? this.runs;
    const g: number[][] = metrics.map(() => []);
    const p: number[][] = metrics.map(() => []);
    const cpu: number[] = [];
    let hwm = 0;
    const peerRun = peer && 'run' in peer ? peer.run : null;
    const gatewayRun = async () => {
      await settleDisk();
      await resetPeak(this.gatewayPid);
      const before = await sample(this.gatewayPid);
      const values = await gateway();
      const after = await sample(this.gatewayPid);
      hwm = Math.max(hwm, after.hwmBytes);
      cpu.push(after.cpuSeconds - before.cpuSeconds);
      values.forEach((v, i) => g[i].push(v));
    };
    try {
      for (let i = 0; i < runs; i++) {
        // Alternate which side goes first, so a drifting machine favours neither.
        if (i % 2 === 0 || !peerRun) await gatewayRun();
        if (peerRun) {
          await settleDisk();
          (await peerRun()).forEach((v, j) => p[j].push(v));
        }
        if (i % 2 === 1 && peerRun) await gatewayRun();
      }
    } catch (err) {
      this.skip(metrics, `failed: ${(err as Error).message.slice(0, 300)}`, peer?.name ?? null);
      return;
    }
    metrics.forEach((m, i) => {
      const gm = median(g[i]);
      const pm = peerRun ? median(p[i]) : null;
      const row: Row = {
        gateway: round(gm, 3),
        peer: pm === null ? null : round(pm, 3),
        unit: m.unit,
        ratio: pm ? round(gm / pm, 3) : null,
        rssMB: round(hwm / 1e6, 1),
        cpuSeconds: round(median(cpu), 2),
        peerName: peer?.name ?? null,
        runs: { gateway: g[i].map((v) => round(v, 3)!), peer: p[i].map((v) => round(v, 3)!) },
      };
      if (peer && 'skip' in peer) row.peerSkipped = peer.skip;
      if (m.note) row.note = m.note;
      this.rows[m.key] = row;
      this.log(`  ${m.key}: gateway ${row.gateway} ${m.unit}${row.peer !== null ? `, ${row.peerName} ${row.peer}, ratio ${row.ratio}` : ''}, RSS ${row.rssMB} MB`);
    });
  }
}

const fmt = (n: number | null) => (n === null ? '—' : Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

/** One plain-text table, also valid Markdown. */
export function formatTable(rows: Record<string, Row>): string {
  const head = ['scenario', 'gateway', 'peer', 'unit', 'ratio', 'RSS MB', 'CPU s', 'notes'];
  const body = Object.entries(rows).map(([k, r]) => [
    k,
    fmt(r.gateway),
    r.peer === null ? '—' : `${fmt(r.peer)} (${r.peerName})`,
    r.unit,
    r.ratio === null ? '—' : r.ratio.toFixed(2),
    fmt(r.rssMB),
    fmt(r.cpuSeconds),
    [r.skipped ? `skipped: ${r.skipped}` : '', r.peerSkipped ? `peer skipped: ${r.peerSkipped}` : '', r.note ?? ''].filter(Boolean).join('; '),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
