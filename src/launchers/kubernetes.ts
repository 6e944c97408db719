/**
 * The Kubernetes launcher, print only (README.md, "Sweeps on Kubernetes"): an Indexed Job whose pod
 * with completion index i runs the stage's i-th trial (`JOB_COMPLETION_INDEX`, the same index contract
 * as Slurm's array, launcher.ts), and a second Job that runs `resflow sweep finalize` for the user to
 * apply after the first completed. Nothing is submitted: the user reviews and applies the manifests.
 *
 * The sweep folder must be on a volume every pod mounts at the same path (a PersistentVolumeClaim,
 * RESFLOW_K8S_PVC, mounted at the folder that holds the sweep); the image (RESFLOW_IMAGE) must have
 * `resflow` on PATH and see the data files at the paths the configs name.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { version } from '../base/version.js';
import { UsageError } from '../base/errors.js';
import { writeAtomic } from '../runs/atomic.js';
import type { LaunchOptions, LaunchPlan, LaunchResult, Launcher } from './launcher.js';
import { isDense, shellQuote } from './shell.js';

export interface KubernetesOptions {
  /** Container image with resflow installed (default: RESFLOW_IMAGE, else a placeholder to replace). */
  image?: string;
  /** PersistentVolumeClaim holding the runs folder (default: RESFLOW_K8S_PVC, else `resflow-runs`). */
  claim?: string;
  env?: NodeJS.ProcessEnv;
}

/** A DNS-1123 label (lower case letters, digits and '-', at most 63 characters) for a Job's name. */
export function k8sName(...parts: string[]): string {
  const name = parts
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return name.slice(0, 63).replace(/-$/, '') || 'resflow';
}

type Manifest = Record<string, unknown>;

function podResources(plan: LaunchPlan, cpus: number): Manifest {
  const res: Record<string, string> = { cpu: String(cpus) };
  if (plan.resources.memoryMb !== undefined) res.memory = `${Math.ceil(plan.resources.memoryMb)}Mi`;
  return { requests: res, limits: res };
}

function podTemplate(plan: LaunchPlan, image: string, claim: string, container: Manifest, labels: Manifest): Manifest {
  const mount = path.dirname(plan.sweepDir);
  return {
    metadata: { labels },
    spec: {
      restartPolicy: 'Never',
      containers: [{ ...container, image, volumeMounts: [{ name: 'runs', mountPath: mount }] }],
      volumes: [{ name: 'runs', persistentVolumeClaim: { claimName: claim } }],
    },
  };
}

export class KubernetesLauncher implements Launcher {
  readonly name = 'kubernetes';
  readonly image: string;
  readonly claim: string;

  constructor(opts: KubernetesOptions = {}) {
    const env = opts.env ?? process.env;
    this.image = opts.image ?? env.RESFLOW_IMAGE ?? `resflow:${version()}`;
    this.claim = opts.claim ?? env.RESFLOW_K8S_PVC ?? 'resflow-runs';
  }

  async check(): Promise<void> {
    // print only: nothing on this machine is needed
  }

  /** The Indexed Job running the stage's trials: completion index i runs trial `plan.indices[i]`. */
  trialsJob(plan: LaunchPlan): Manifest {
    const n = plan.indices.length;
    if (!n) throw new UsageError('kubernetes: no trials to run in this stage');
    if (new Set(plan.indices).size !== n) throw new UsageError('kubernetes: trial indices repeat');
    const labels = { 'app.kubernetes.io/name': 'resflow', 'resflow/sweep': k8sName(plan.name) };
    // indices 0..n-1 map to themselves; any other list is looked up by the completion index
    const container: Manifest = isDense(plan.indices)
      ? { name: 'trial', command: ['resflow'], args: ['sweep', 'run-trial', plan.sweepDir, '--index', '$(JOB_COMPLETION_INDEX)'] }
      : {
          name: 'trial',
          command: ['sh', '-c'],
          args: [
            `set -- ${plan.indices.join(' ')}; shift "$JOB_COMPLETION_INDEX"; ` +
              `exec resflow sweep run-trial ${shellQuote(plan.sweepDir)} --index "$1"`,
          ],
        };
    container.resources = podResources(plan, plan.resources.cpus);
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: k8sName('resflow', plan.name), labels },
      spec: {
        completionMode: 'Indexed',
        completions: n,
        parallelism: Math.max(1, Math.min(plan.parallel, n)),
        // each trial retries itself up to the sweep's limit; a pod failing is an infrastructure fault
        backoffLimit: n,
        template: podTemplate(plan, this.image, this.claim, container, labels),
      },
    };
  }

  /** The Job that writes trials.csv/json and the leaderboard once the trials Job completed. */
  finalizeJob(plan: LaunchPlan): Manifest {
    const labels = { 'app.kubernetes.io/name': 'resflow', 'resflow/sweep': k8sName(plan.name) };
    const container: Manifest = {
      name: 'finalize',
      command: ['resflow'],
      args: ['sweep', 'finalize', plan.sweepDir],
      resources: podResources(plan, 1),
    };
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: k8sName('resflow', plan.name, 'finalize'), labels },
      spec: { completions: 1, backoffLimit: 2, template: podTemplate(plan, this.image, this.claim, container, labels) },
    };
  }

  async launch(plan: LaunchPlan, opts: LaunchOptions): Promise<LaunchResult> {
    const trials = stringify(this.trialsJob(plan));
    const finalize = stringify(this.finalizeJob(plan));
    const dir = path.join(plan.sweepDir, 'kubernetes');
    const files = [path.join(dir, 'trials-job.yaml'), path.join(dir, 'finalize-job.yaml')];
    opts.out(trials.trimEnd());
    if (!opts.dryRun) {
      mkdirSync(dir, { recursive: true });
      writeAtomic(files[0]!, trials);
      writeAtomic(files[1]!, finalize);
    }
    const name = k8sName('resflow', plan.name);
    if (this.image === `resflow:${version()}`) opts.info(`image ${this.image} is a placeholder: set RESFLOW_IMAGE to your resflow image`);
    opts.info(
      opts.dryRun
        ? `dry run: nothing written; without --dry-run the manifests go to ${dir}`
        : `wrote ${files.join(' and ')}; apply: kubectl apply -f ${shellQuote(files[0]!)}; ` +
            `after 'kubectl wait --for=condition=complete job/${name}': kubectl apply -f ${shellQuote(files[1]!)}`,
    );
    return { outcome: 'printed', files: opts.dryRun ? [] : files };
  }
}
