/**
 * The resflow command line. Exit codes: 0 success, 1 runtime failure, 2 bad usage, config or data.
 * Errors print one clear line (no stack trace unless --verbose).
 */
import { Command, CommanderError, Option } from 'commander';
import { Interrupted, ResflowError } from '../base/errors.js';
import { log, setVerbosity, verbosity } from '../base/log.js';
import { registerDataCommands } from './data.js';
import { registerConfigCommands } from './config.js';
import { registerRunCommands } from './run.js';
import { registerCompareCommand } from './compare.js';
import { registerSweepCommand } from './sweep.js';
import { version } from '../base/version.js';

export function buildProgram(): Command {
  const program = new Command('resflow');
  program
    .description('Train, evaluate and compare multi-task pre-ranking models (ResFlow, MMoE, PLE, ESMM, ...) on search logs.')
    .version(version(), '-V, --version')
    .addOption(new Option('-v, --verbose', 'more detail, and stack traces on errors'))
    .addOption(new Option('-q, --quiet', 'print results only, no progress'))
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false })
    .hook('preAction', (cmd) => {
      const o = cmd.optsWithGlobals();
      setVerbosity(o.verbose ? 'verbose' : o.quiet ? 'quiet' : 'normal');
    })
    .addHelpText(
      'after',
      `
Examples:
  resflow data synth --preset tiny --out datasets/tiny        make a synthetic search funnel with ground truth
  resflow data inspect datasets/tiny/train.parquet            rows, requests, stages, label rates, nesting checks
  resflow data import train.csv --out train.parquet --rename conversion=purchase
  resflow config check configs/quickstart.yaml                validate a config (exit 2 with the reason if bad)
  resflow config print configs/quickstart.yaml --set train.epochs=3
  resflow train configs/quickstart.yaml                        train; prints the run folder
  resflow eval runs/quickstart/<version>                       metric tables for a trained run
  resflow compare runs/quickstart                              runs side by side
  resflow sweep configs/sweeps/quickstart.yaml                 search × seeds in parallel; ends with a leaderboard

Exit codes: 0 success, 1 runtime failure, 2 bad usage, config or data.`,
    );
  registerDataCommands(program);
  registerConfigCommands(program);
  registerRunCommands(program);
  registerCompareCommand(program);
  registerSweepCommand(program);
  program.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  if (argv.includes('--verbose') || argv.includes('-v')) setVerbosity('verbose');
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

/** Prints an error the way users should see it and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version exit through here with code 0; commander already printed its message.
    if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2;
  }
  if (err instanceof Interrupted) {
    process.stderr.write(`resflow: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof ResflowError) {
    process.stderr.write(`resflow: error: ${err.message}\n`);
    if (verbosity() === 'verbose' && err.stack) process.stderr.write(err.stack + '\n');
    return err.exitCode;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`resflow: error: ${e.message}\n`);
  if (verbosity() === 'verbose') process.stderr.write(`${e.stack}\n`);
  else log.info('(run with --verbose for the stack trace)');
  return 1;
}
