/**
 * How a sweep's trials get run somewhere (docs/architecture.md, "Where a new thing plugs in"). A
 * sweep folder holds the expanded trials, numbered 0..n-1; a launcher's only job is to make
 * `resflow sweep run-trial <sweepDir> --index <i>` run once for every index (each call is
 * idempotent: a completed trial is skipped, an interrupted one resumed from its checkpoint, a failed
 * one retried up to the sweep's limit), then `resflow sweep finalize <sweepDir>` once after all of
 * them ended, whatever their outcome (it writes trials.csv/json and the leaderboard, and launches the
 * sweep's next stage, if any, through the same launcher).
 *
 * A launcher is one module behind this interface, added to the registry in ./registry.ts.
 */

/** What a launcher needs to run one stage of a sweep. */
export interface LaunchPlan {
  /** Absolute path of the sweep folder. */
  sweepDir: string;
  /** Sweep name (job names, labels). */
  name: string;
  /** Trial indices to run (a stage's indices; a re-run passes only those not completed). */
  indices: number[];
  /** The command that runs resflow, as argv (e.g. [process.execPath, '/abs/path/bin/resflow.js']). */
  resflow: string[];
  /** Trials running at once (local: worker processes; Slurm: the array's %P throttle). */
  parallel: number;
  resources: TrialResources;
}

export interface TrialResources {
  /** CPU threads each trial may use (runtime.threads of the trial; Slurm --cpus-per-task). */
  cpus: number;
  /** Memory per trial in MiB (Slurm --mem), if set. */
  memoryMb?: number;
  /** Time limit per trial in minutes (Slurm --time), if set. */
  timeMinutes?: number;
  /** Slurm partition, if set. */
  partition?: string;
  /** Extra scheduler flags, passed through as given (e.g. ['--qos=low']). */
  extraArgs: string[];
}

export interface LaunchOptions {
  /** Print what would be submitted (scripts, manifests) without running anything. */
  dryRun: boolean;
  /** Where a launcher prints (the app's Reporter `out`/`info`). */
  out: (line: string) => void;
  info: (line: string) => void;
  /**
   * Launchers that run trials here (local) call these as each trial starts and ends, so the sweep
   * use case can draw its progress bar over trials (report/progress.ts sits in a room launchers/
   * may not import). `exitCode`: run-trial's (0 done, 130/143 interrupted, else failed).
   */
  onTrialStart?: (index: number) => void;
  onTrialEnd?: (index: number, exitCode: number) => void;
}

export interface LaunchResult {
  /**
   * `finished`: the trials ran here and ended (local). `submitted`: handed to a scheduler; the
   * finalize step runs there (Slurm, Kubernetes). `printed`: dry run or print-only launcher.
   */
  outcome: 'finished' | 'submitted' | 'printed';
  /** Scheduler ids (Slurm job ids), for the user to watch. */
  jobIds?: string[];
  /** Files written (batch scripts, manifests), absolute paths. */
  files?: string[];
  /** The signal that stopped a local launch early (its workers checkpointed; a re-run continues). */
  interrupted?: 'SIGINT' | 'SIGTERM';
}

export interface Launcher {
  readonly name: string;
  /** Throws a UsageError (exit 2) saying what is missing when this launcher cannot run here (e.g. no `sbatch`). */
  check(opts: { dryRun: boolean }): Promise<void>;
  launch(plan: LaunchPlan, opts: LaunchOptions): Promise<LaunchResult>;
}

/**
 * The environment contract of a trial process: the index of the trial a scheduler array task runs
 * (Slurm: SLURM_ARRAY_TASK_ID; Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX), and the CPUs it was
 * granted (Slurm: SLURM_CPUS_PER_TASK), which bound every thread pool of the trial.
 */
export const INDEX_ENV = ['SLURM_ARRAY_TASK_ID', 'JOB_COMPLETION_INDEX'] as const;
export const CPUS_ENV = ['SLURM_CPUS_PER_TASK'] as const;
