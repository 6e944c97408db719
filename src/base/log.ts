/**
 * Console output with the CLI's verbosity levels. Results go to stdout; progress and
 * diagnostics go to stderr so that `resflow ... > file` captures only results.
 */
export type Verbosity = 'quiet' | 'normal' | 'verbose';

let level: Verbosity = 'normal';

export function setVerbosity(v: Verbosity): void {
  level = v;
}

export function verbosity(): Verbosity {
  return level;
}

export const log = {
  /** A result line: always printed, to stdout. */
  out(msg: string): void {
    process.stdout.write(msg + '\n');
  },
  info(msg: string): void {
    if (level !== 'quiet') process.stderr.write(msg + '\n');
  },
  warn(msg: string): void {
    process.stderr.write(`warning: ${msg}\n`);
  },
  debug(msg: string): void {
    if (level === 'verbose') process.stderr.write(`[debug] ${msg}\n`);
  },
};
