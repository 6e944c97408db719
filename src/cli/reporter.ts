/** The CLI's Reporter: results to stdout, diagnostics and progress bars to stderr, at the chosen verbosity. */
import { log } from '../base/log.js';
import { startProgress } from '../report/progress.js';
import type { Reporter } from '../app/reporter.js';

export const consoleReporter: Reporter = {
  out: (line) => log.out(line),
  info: (line) => log.info(line),
  debug: (line) => log.debug(line),
  progress: (opts) => startProgress(opts),
};
