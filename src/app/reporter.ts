/**
 * How use cases talk to a person: log lines and progress displays go through a Reporter the
 * caller passes in, so the CLI can draw bars while a benchmark or a sweep worker stays silent.
 */
import type { Progress, ProgressOptions } from '../report/progress.js';

export type { Progress, ProgressOptions } from '../report/progress.js';

export interface Reporter {
  /** A result line (the CLI prints it to stdout). */
  out(line: string): void;
  /** A diagnostic line. */
  info(line: string): void;
  debug(line: string): void;
  progress(opts: ProgressOptions): Progress;
}

const noProgress: Progress = { update: () => {}, setTotal: () => {}, stop: () => {} };

/** Says nothing. */
export const silentReporter: Reporter = { out: () => {}, info: () => {}, debug: () => {}, progress: () => noProgress };
