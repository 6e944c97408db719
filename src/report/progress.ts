/**
 * Progress for long work: a bar on a terminal, plain periodic lines otherwise (CI logs, pipes).
 * Silent under --quiet.
 */
import cliProgress from 'cli-progress';
import { verbosity } from '../base/log.js';

export interface Progress {
  /** Sets absolute progress and the extra fields shown after the bar (e.g. loss, samples/s). */
  update(done: number, fields?: Record<string, string>): void;
  setTotal(total: number): void;
  stop(finalLine?: string): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  unit: string;
  /** Seconds between lines when not on a terminal. */
  lineEverySeconds?: number;
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function startProgress(opts: ProgressOptions): Progress {
  const quiet = verbosity() === 'quiet';
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const started = Date.now();
  let total = opts.total;
  let done = 0;
  let fields: Record<string, string> = {};
  const rate = () => done / Math.max((Date.now() - started) / 1000, 1e-3);
  const extra = () => Object.entries(fields).map(([k, v]) => `${k} ${v}`).join('  ');

  if (quiet) return { update: () => {}, setTotal: () => {}, stop: () => {} };

  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${opts.label} [{bar}] {percentage}% | {value}/{total} ${opts.unit} | {rate} ${opts.unit}/s | left {left} | {extra}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
        barsize: 24,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: '0', left: '?', extra: '' });
    return {
      update(d, f) {
        done = d;
        if (f) fields = f;
        const r = rate();
        bar.update(d, { rate: Math.round(r).toLocaleString('en-US'), left: fmtDuration((total - d) / r), extra: extra() });
      },
      setTotal(t) {
        total = t;
        bar.setTotal(t);
      },
      stop(finalLine) {
        bar.stop();
        if (finalLine) process.stderr.write(finalLine + '\n');
      },
    };
  }

  const every = (opts.lineEverySeconds ?? 10) * 1000;
  let lastLine = 0;
  return {
    update(d, f) {
      done = d;
      if (f) fields = f;
      const now = Date.now();
      if (now - lastLine >= every) {
        lastLine = now;
        const pct = total > 0 ? ((100 * d) / total).toFixed(0) : '?';
        const r = rate();
        process.stderr.write(
          `${opts.label}: ${d.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${opts.unit} (${pct}%), ${Math.round(r).toLocaleString('en-US')} ${opts.unit}/s, left ${fmtDuration((total - d) / r)}${fields && Object.keys(fields).length ? ', ' + extra() : ''}\n`,
        );
      }
    },
    setTotal(t) {
      total = t;
    },
    stop(finalLine) {
      if (finalLine) process.stderr.write(finalLine + '\n');
    },
  };
}
