/** `resflow sweep`: run a sweep spec, one trial of it, its finalize step, its status, its schema (README.md, "Sweeps"). */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Interrupted, RuntimeFailure, UsageError } from '../base/errors.js';
import { log } from '../base/log.js';
import { INDEX_ENV } from '../launchers/launcher.js';
import { WORKER_ENV } from '../launchers/local.js';
import { launcherNames } from '../launchers/registry.js';
import { checkResourceFlags, finalizeCommand, runSweep, sweepJsonSchema, sweepStatus, type ResourceFlags } from '../app/sweep/sweep.js';
import { collect } from './options.js';
import { runTrial } from '../app/sweep/trial.js';
import { consoleReporter } from './reporter.js';
import { EXIT_CODE, StopSignals } from './run.js';

/** argv that runs this resflow again (workers, batch scripts). */
function resflowArgv(): string[] {
  return [process.execPath, path.resolve(process.argv[1] ?? 'bin/resflow.js')];
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} ${v}: expected a non-negative integer`);
  return n;
}

/** The trial index: --index, else the scheduler's array index (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX). */
function trialIndex(flag: string | undefined): number {
  if (flag !== undefined) return positiveInt('--index', flag)!;
  for (const name of INDEX_ENV) {
    const v = process.env[name];
    if (v !== undefined && v !== '') return positiveInt(name, v)!;
  }
  throw new UsageError(`run-trial needs --index I (or ${INDEX_ENV.join(' / ')} set by the scheduler)`);
}

export function registerSweepCommand(program: Command): void {
  const sweep = program
    .command('sweep')
    .description('hyperparameter search × seeds from a sweep spec; runs its trials through a launcher and writes a leaderboard')
    .argument('[spec]', 'YAML sweep spec (configs/sweeps/quickstart.yaml)')
    .option('--launcher <name>', `where trials run: ${launcherNames().join(', ')}`, 'local')
    .option('--runs-dir <dir>', 'where the sweep folder goes (<dir>/<sweep name>/)', 'runs')
    .option('--parallel <n>', 'trials at once (overrides the spec)')
    .option('--dry-run', 'check the spec and print what would run, without running it')
    .option('--partition <name>', 'Slurm partition of every trial (over the spec\'s resources.partition)')
    .option('--time <limit>', 'Slurm time limit per trial: minutes, 90m, 2h, 1:30:00 (over resources.time)')
    .option('--mem <size>', 'Slurm memory per trial: MiB, 4G, 512M (over resources.memory)')
    .option('--cpus-per-task <n>', 'Slurm CPUs per trial, its threads (over resources.threads)')
    .option('--sbatch-arg <flag>', 'an extra sbatch flag, after the spec\'s resources.extra (repeatable), e.g. --sbatch-arg=--qos=low', collect, [])
    .addHelpText(
      'after',
      '\nExamples:\n  resflow sweep configs/sweeps/quickstart.yaml\n  resflow sweep configs/sweeps/models.yaml --launcher slurm --partition cpu --time 2h --mem 4G --sbatch-arg=--qos=low --dry-run\n  resflow sweep status runs/quickstart-sweep\n  resflow compare runs/quickstart-sweep\n\nRunning the same spec again skips completed runs, resumes interrupted ones and retries failed ones.',
    )
    .action(async (spec: string | undefined, o: { launcher: string; runsDir: string; parallel?: string; dryRun?: boolean } & ResourceFlags) => {
      if (!spec) throw new UsageError('sweep needs a spec file, e.g. resflow sweep configs/sweeps/quickstart.yaml (or a subcommand: run-trial, finalize, status, schema)');
      const resources = checkResourceFlags(o, o.launcher);
      const result = await runSweep(
        spec,
        { runsDir: o.runsDir, launcher: o.launcher, dryRun: Boolean(o.dryRun), parallel: positiveInt('--parallel', o.parallel), resflow: resflowArgv(), resources },
        consoleReporter,
      );
      if (result.final) {
        if (result.ran === 0) log.info('nothing to run: every run of the sweep is done');
        log.out(result.final.leaderboard.trimEnd());
      }
      if (result.launch?.jobIds?.length) log.info(`submitted: ${result.launch.jobIds.join(', ')}`);
      log.out(result.dir);
      const failed = result.final?.rows.filter((r) => r.status === 'failed') ?? [];
      if (failed.length > 0) {
        throw new RuntimeFailure(`${failed.length} run(s) failed (${failed.map((r) => r.index).join(', ')}; see trials.csv and logs/); running the sweep again retries them (retries: ${result.final!.retries})`);
      }
    });

  sweep
    .command('run-trial')
    .description('run one run of a sweep (the entry of every launcher: idempotent, resumes, retries)')
    .argument('<dir>', 'sweep folder')
    .option('--index <i>', 'run index (default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)')
    .option('--threads <n>', 'threads for the trial (default: SLURM_CPUS_PER_TASK, the spec, the config)')
    .action(async (dir: string, o: { index?: string; threads?: string }) => {
      const index = trialIndex(o.index);
      const threads = positiveInt('--threads', o.threads);
      const signals = new StopSignals();
      // started by the local launcher: when the sweep process is gone (its pipe closes), stop and checkpoint
      let parentGone = false;
      const worker = process.env[WORKER_ENV] === '1';
      if (worker) {
        process.stdin.on('end', () => (parentGone = true));
        process.stdin.on('close', () => (parentGone = true));
        process.stdin.on('error', () => (parentGone = true));
        process.stdin.resume();
      }
      try {
        const r = await runTrial(
          dir,
          index,
          { threads: threads === 0 ? undefined : threads, stopRequested: () => signals.first !== undefined || parentGone, onRunStarted: (run) => (signals.folder = run) },
          consoleReporter,
        );
        log.info(`${r.outcome}: ${r.child.name}`);
        log.out(r.runDir);
      } catch (err) {
        if (err instanceof Interrupted && signals.first) throw new Interrupted(`${signals.first}: ${err.message}`, EXIT_CODE[signals.first]);
        if (err instanceof Interrupted && parentGone) throw new Interrupted(`the sweep process is gone: ${err.message}`, EXIT_CODE.SIGTERM);
        throw err;
      } finally {
        if (!signals.first) signals.dispose();
        if (worker) process.stdin.destroy();
      }
    });

  sweep
    .command('finalize')
    .description("write a sweep's trials.csv/json and leaderboard.md (and start its final stage when due)")
    .argument('<dir>', 'sweep folder')
    .action(async (dir: string) => {
      const r = await finalizeCommand(dir, resflowArgv(), consoleReporter);
      if (r.final) log.out(r.final.leaderboard.trimEnd());
    });

  sweep
    .command('status')
    .description("counts of a sweep's runs by status (stale: recorded as running, its process gone)")
    .argument('<dir>', 'sweep folder')
    .option('--runs', 'list every run with its status')
    .action((dir: string, o: { runs?: boolean }) => {
      const s = sweepStatus(dir);
      if (o.runs) for (const r of s.rows) log.out(`${String(r.index).padStart(4)}  ${r.status.padEnd(11)}  ${r.name}${r.attempts > 1 ? `  (${r.attempts} attempts)` : ''}`);
      const parts = Object.entries(s.counts).map(([k, v]) => `${k} ${v}`);
      log.out(`${s.dir}: ${s.total} runs: ${parts.join(', ')}`);
    });

  sweep
    .command('schema')
    .description('emit the JSON Schema of sweep specs, for editor validation and completion')
    .option('-o, --out <file>', 'write to a file instead of stdout')
    .action((o: { out?: string }) => {
      const text = JSON.stringify(sweepJsonSchema(), null, 2) + '\n';
      if (o.out) {
        writeFileSync(o.out, text);
        log.info(`wrote ${o.out}`);
      } else process.stdout.write(text);
    });
}
