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
import { registerPredictCommand } from './predict.js';
import { registerCompareCommand } from './compare.js';
import { registerSweepCommand } from './sweep.js';
import { registerExportCommand } from './export.js';
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
  resflow predict runs/quickstart/<version> --data new.parquet --out scores.parquet   score unlabelled rows
  resflow compare runs/quickstart                              runs side by side
  resflow sweep configs/sweeps/quickstart.yaml                 search × seeds in parallel; ends with a leaderboard
  resflow export runs/quickstart/<version> --format onnx       ONNX graph + features.json for serving

Exit codes: 0 success, 1 runtime failure, 2 bad usage, config or data.`,
    );
  registerDataCommands(program);
  registerConfigCommands(program);
  registerRunCommands(program);
  registerPredictCommand(program);
  registerCompareCommand(program);
  registerSweepCommand(program);
  registerExportCommand(program);
  forEachCommand(program, oneLineUsageErrors);
  return program;
}

function forEachCommand(cmd: Command, f: (c: Command) => void): void {
  f(cmd);
  for (const sub of cmd.commands) forEachCommand(sub, f);
}

/**
 * Commander's parse errors (unknown option, missing argument, unknown command) become one line on
 * stderr and a thrown CommanderError instead of `process.exit(1)`, so reportError maps them to exit 2
 * as the README promises for bad usage. Set on every command: subcommands registered before it was
 * set would not inherit it.
 */
function oneLineUsageErrors(cmd: Command): void {
  const name = commandPath(cmd);
  cmd.exitOverride().configureOutput({
    outputError: (str, write) => write(`resflow: ${str.trim().replace(/\s*\n\s*/g, ' ')} (see \`${name} --help\`)\n`),
  });
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  // A reader that closes the pipe early (`resflow compare ... | head`) ends the output, not in a stack trace.
  if (!process.stdout.listeners('error').includes(endOnClosedPipe)) process.stdout.on('error', endOnClosedPipe);
  if (argv.includes('--verbose') || argv.includes('-v')) setVerbosity('verbose');
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

function endOnClosedPipe(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
}

/** Prints an error the way users should see it and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed its message (oneLineUsageErrors). --help and --version exit 0;
    // everything else is bad usage (a group command without its subcommand prints its help to stderr).
    if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
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
