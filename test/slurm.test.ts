/**
 * The Slurm and Kubernetes launchers (README.md, "Sweeps on Slurm", "Sweeps on Kubernetes"): the batch
 * scripts' and the Indexed Job's shape, a missing sbatch, sbatch stand-ins; and, with a cluster up
 * (scripts/slurm-local.sh), real job arrays: every index runs once, the finalize job after all of
 * them, and a task sent SIGTERM requeues itself and runs again. Without Slurm those tests skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { RuntimeFailure, UsageError } from '../src/base/errors.js';
import type { LaunchOptions, LaunchPlan } from '../src/launchers/launcher.js';
import { finalizeScript, parseJobId, SlurmLauncher, trialsScript } from '../src/launchers/slurm.js';
import { KubernetesLauncher } from '../src/launchers/kubernetes.js';
import { indexRanges } from '../src/launchers/shell.js';
import { checkResourceFlags } from '../src/app/sweep/sweep.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';
import { clusterSkip } from './helpers/slurm.js';

const dir = tempDir('resflow-slurm-');

function plan(over: Partial<LaunchPlan> = {}, res: Partial<LaunchPlan['resources']> = {}): LaunchPlan {
  return {
    sweepDir: path.join(dir, 'sweeps', 'quick'),
    name: 'quick',
    indices: [0, 1, 2, 3, 5],
    resflow: ['/usr/bin/node', '/opt/resflow/bin/resflow.js'],
    parallel: 2,
    resources: { cpus: 2, memoryMb: 1536, timeMinutes: 30, partition: 'cpu', extraArgs: ['--qos=low', '--comment', 'a b'], ...res },
    ...over,
  };
}

function capture(dryRun: boolean): { opts: LaunchOptions; out: string[]; info: string[] } {
  const out: string[] = [];
  const info: string[] = [];
  return { opts: { dryRun, out: (l) => out.push(l), info: (l) => info.push(l) }, out, info };
}

const directives = (script: string) => script.split('\n').filter((l) => l.startsWith('#SBATCH ')).map((l) => l.slice(8));

test('the array script asks for the plan: indices, throttle, CPUs, memory, time, partition, signal, requeue, logs, extra flags', () => {
  const p = plan();
  const script = trialsScript(p);
  assert.ok(script.startsWith('#!/bin/bash\n'));
  assert.deepEqual(directives(script), [
    '--job-name=resflow-quick',
    '--array=0-3,5%2',
    '--ntasks=1',
    '--cpus-per-task=2',
    '--partition=cpu',
    '--mem=1536M',
    '--time=30',
    '--signal=TERM@120',
    '--requeue',
    '--open-mode=append',
    `--output=${path.join(p.sweepDir, 'slurm/logs/trial-%a.log')}`,
    '--qos=low',
    "--comment 'a b'",
  ]);
  // the trial runs as a job step (so --signal without B: reaches it) with the task's index
  assert.match(script, /\nsrun --ntasks=1 --cpus-per-task="\$\{SLURM_CPUS_PER_TASK:-2\}" \/usr\/bin\/node \/opt\/resflow\/bin\/resflow\.js sweep run-trial \S+\/sweeps\/quick --index "\$\{SLURM_ARRAY_TASK_ID\}"\n/);
  // stopped by SIGTERM (exit 143): the task requeues itself, a bounded number of times
  assert.match(script, /if \[ "\$rc" -eq 143 \] && \[ "\$\{SLURM_RESTART_COUNT:-0\}" -lt 20 \]; then\n.*\n {2}scontrol requeue "\$\{SLURM_ARRAY_JOB_ID\}_\$\{SLURM_ARRAY_TASK_ID\}"\nfi\nexit \$rc\n$/);
  // bash accepts it
  const file = writeFile(dir, 'trials.sbatch', script);
  assert.equal(spawnSync('bash', ['-n', file]).status, 0);

  // no limits given: none asked for; the throttle never exceeds the trials; a short limit warns earlier
  const bare = directives(trialsScript(plan({ indices: [4, 7], parallel: 8 }, { memoryMb: undefined, timeMinutes: undefined, partition: undefined, extraArgs: [] })));
  assert.ok(bare.includes('--array=4,7%2') && bare.includes('--signal=TERM@120'));
  assert.ok(!bare.some((d) => /^--(mem|time|partition)=/.test(d)));
  assert.ok(directives(trialsScript(plan({}, { timeMinutes: 2 }))).includes('--signal=TERM@30'));
});

test('the finalize script runs `sweep finalize` once; paths with spaces are quoted', () => {
  const p = plan({ sweepDir: path.join(dir, 'my sweeps', 'q') });
  const script = finalizeScript(p);
  const d = directives(script);
  assert.ok(d.includes('--job-name=resflow-quick-finalize') && d.includes('--cpus-per-task=1') && d.includes('--mem=1536M'));
  assert.ok(d.includes(`--output='${path.join(p.sweepDir, 'slurm/logs/finalize.log')}'`));
  assert.ok(!d.some((x) => x.startsWith('--array') || x.startsWith('--requeue')));
  assert.ok(script.includes(`\nexec /usr/bin/node /opt/resflow/bin/resflow.js sweep finalize '${p.sweepDir}'\n`));
  assert.equal(spawnSync('bash', ['-n', writeFile(dir, 'fin.sbatch', script)]).status, 0);
});

test('index lists, job ids and bad plans', () => {
  assert.equal(indexRanges([5, 0, 1, 2, 9, 10, 3, 12, 13, 14, 2]), '0-3,5,9,10,12-14');
  assert.equal(indexRanges([7]), '7');
  assert.equal(parseJobId('1234\n'), '1234');
  assert.equal(parseJobId('77;cluster1'), '77');
  assert.throws(() => parseJobId('Submitted batch job 5'), (e: unknown) => e instanceof RuntimeFailure && /job id/.test(e.message));
  assert.throws(() => trialsScript(plan({}, { extraArgs: ['low'] })), (e: unknown) => e instanceof UsageError && /'low' must start with '-'/.test(e.message));
  assert.throws(() => trialsScript(plan({ indices: [1, -2] })), (e: unknown) => e instanceof UsageError && /index -2/.test(e.message));
  assert.throws(() => trialsScript(plan({}, { cpus: 0 })), (e: unknown) => e instanceof UsageError && /cpus/.test(e.message));
});

test('no sbatch on PATH: check() is a usage error naming it (exit 2), unless it is a dry run', async () => {
  const launcher = new SlurmLauncher({ env: { PATH: path.join(dir, 'empty-bin') } });
  await assert.rejects(launcher.check({ dryRun: false }), (e: unknown) => e instanceof UsageError && e.exitCode === 2 && /^sbatch not found on PATH/.test(e.message));
  await launcher.check({ dryRun: true });
  // a dry run prints both scripts and writes nothing
  const p = plan({ sweepDir: path.join(dir, 'dry') });
  const { opts, out } = capture(true);
  const r = await launcher.launch(p, opts);
  assert.equal(r.outcome, 'printed');
  assert.ok(out.join('\n').includes('--array=0-3,5%2') && out.join('\n').includes('sweep finalize'));
  assert.ok(out.some((l) => l.includes('--dependency=afterany:')));
  assert.equal(existsSync(p.sweepDir), false);
});

/** A stand-in sbatch that records its arguments and answers with the next job id (or fails). */
function fakeSbatch(name: string, body: string): string {
  const bin = path.join(dir, name);
  mkdirSync(bin, { recursive: true });
  const file = writeFile(bin, 'sbatch', `#!/bin/sh\necho "$@" >> "${bin}/calls"\n${body}\n`);
  chmodSync(file, 0o755);
  return bin;
}

test('submission: the array, then finalize depending on it (afterany); sbatch errors are reported', async () => {
  const bin = fakeSbatch('bin-ok', 'n=$(wc -l < "$(dirname "$0")/calls"); echo "$((100 + n))"');
  const p = plan({ sweepDir: path.join(dir, 'submitted') });
  const { opts, info } = capture(false);
  const r = await new SlurmLauncher({ env: { PATH: `${bin}:/usr/bin:/bin` } }).launch(p, opts);
  assert.deepEqual(r.jobIds, ['101', '102']);
  assert.equal(r.outcome, 'submitted');
  const calls = readFileSync(path.join(bin, 'calls'), 'utf8').trim().split('\n');
  assert.deepEqual(calls, [`--parsable ${p.sweepDir}/slurm/trials.sbatch`, `--parsable --dependency=afterany:101 ${p.sweepDir}/slurm/finalize.sbatch`]);
  assert.equal(readFileSync(path.join(p.sweepDir, 'slurm/trials.sbatch'), 'utf8'), trialsScript(p));
  assert.ok(existsSync(path.join(p.sweepDir, 'slurm/logs')));
  assert.match(info.join('\n'), /job array 101: 5 trial\(s\), at most 2 at once/);

  const bad = fakeSbatch('bin-bad', 'echo "sbatch: error: invalid partition specified: cpu" >&2; exit 1');
  await assert.rejects(new SlurmLauncher({ env: { PATH: bad } }).launch(plan({ sweepDir: path.join(dir, 'bad') }), capture(false).opts), (e: unknown) => e instanceof UsageError && /trials\.sbatch failed: sbatch: error: invalid partition/.test(e.message));
  // the array went in but finalize did not: say which job runs and what to do after it
  const half = fakeSbatch('bin-half', 'case "$*" in *dependency*) echo "sbatch: error: Slurm temporarily unable to accept job" >&2; exit 1;; esac; echo 55');
  await assert.rejects(new SlurmLauncher({ env: { PATH: half } }).launch(plan({ sweepDir: path.join(dir, 'half') }), capture(false).opts), (e: unknown) => e instanceof RuntimeFailure && e.exitCode === 1 && /job array 55 was submitted: after it ends run 'resflow sweep finalize/.test(e.message));
});

test('Kubernetes: an Indexed Job over the trials with the plan\'s resources, and a finalize Job', async () => {
  const k = new KubernetesLauncher({ env: { RESFLOW_IMAGE: 'registry.example/resflow:1', RESFLOW_K8S_PVC: 'runs-pvc' } });
  const p = plan({ indices: [0, 1, 2, 3], name: 'Quick Sweep_1' });
  const { opts, out, info } = capture(false);
  const r = await k.launch(p, opts);
  assert.equal(r.outcome, 'printed');
  const job = parseYaml(out.join('\n')) as any;
  assert.equal(job.apiVersion, 'batch/v1');
  assert.equal(job.kind, 'Job');
  assert.equal(job.metadata.name, 'resflow-quick-sweep-1');
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.equal(job.spec.completions, 4);
  assert.equal(job.spec.parallelism, 2);
  const pod = job.spec.template.spec;
  assert.equal(pod.restartPolicy, 'Never');
  const c = pod.containers[0];
  assert.equal(c.image, 'registry.example/resflow:1');
  assert.deepEqual([...c.command, ...c.args], ['resflow', 'sweep', 'run-trial', p.sweepDir, '--index', '$(JOB_COMPLETION_INDEX)']);
  assert.deepEqual(c.resources, { requests: { cpu: '2', memory: '1536Mi' }, limits: { cpu: '2', memory: '1536Mi' } });
  assert.deepEqual(c.volumeMounts, [{ name: 'runs', mountPath: path.dirname(p.sweepDir) }]);
  assert.deepEqual(pod.volumes, [{ name: 'runs', persistentVolumeClaim: { claimName: 'runs-pvc' } }]);
  // written too, with the finalize Job beside it
  assert.deepEqual(r.files, [path.join(p.sweepDir, 'kubernetes/trials-job.yaml'), path.join(p.sweepDir, 'kubernetes/finalize-job.yaml')]);
  const fin = parseAllDocuments(readFileSync(r.files![1]!, 'utf8'))[0]!.toJS() as any;
  assert.equal(fin.metadata.name, 'resflow-quick-sweep-1-finalize');
  assert.deepEqual(fin.spec.template.spec.containers[0].args, ['sweep', 'finalize', p.sweepDir]);
  assert.match(info.join('\n'), /kubectl wait --for=condition=complete job\/resflow-quick-sweep-1/);
  // the default image is a placeholder, and says so
  const d = capture(true);
  await new KubernetesLauncher({ env: {} }).launch(p, d.opts);
  assert.match(d.info.join('\n'), /placeholder: set RESFLOW_IMAGE/);
});

test('Kubernetes: any index list maps completion index i to the i-th trial', async () => {
  const k = new KubernetesLauncher({ env: {} });
  const p = plan({ indices: [3, 5, 9], sweepDir: path.join(dir, "it's") });
  const job = k.trialsJob(p) as any;
  assert.equal(job.spec.completions, 3);
  const c = job.spec.template.spec.containers[0];
  assert.deepEqual(c.command, ['sh', '-c']);
  // run the pod's command with a stand-in resflow for each completion index
  const bin = path.join(dir, 'k8s-bin');
  mkdirSync(bin, { recursive: true });
  chmodSync(writeFile(bin, 'resflow', '#!/bin/sh\necho "$@"\n'), 0o755);
  const ran = [0, 1, 2].map((i) => spawnSync('sh', ['-c', c.args[0]], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, JOB_COMPLETION_INDEX: String(i) } }).stdout.trim());
  assert.deepEqual(ran, [3, 5, 9].map((i) => `sweep run-trial ${p.sweepDir} --index ${i}`));
});

test('resflow sweep --launcher slurm: no sbatch on PATH exits 2 naming it before anything is written; --dry-run prints the scripts', () => {
  writeFile(dir, 'exp.yaml', tinyConfigYaml());
  const spec = writeFile(dir, 'cli.yaml', 'name: cli\nconfigs: [exp.yaml]\nspace: { train.optimizer.lr: { grid: [0.001, 0.003] } }\nseeds: [1, 2]\nresources: { threads: 1, memory: 2G, time: 1h, partition: cpu, extra: [--qos=low] }\nparallel: 2\n');
  const noSlurm = { PATH: path.join(dir, 'empty-bin') };
  const r = cli(['sweep', spec, '--launcher', 'slurm', '--runs-dir', path.join(dir, 'cli-runs')], { env: noSlurm });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /sbatch not found on PATH/);
  assert.equal(r.stderr.includes('    at '), false, 'no stack trace');
  assert.equal(existsSync(path.join(dir, 'cli-runs')), false);

  const dry = cli(['sweep', spec, '--launcher', 'slurm', '--dry-run', '--runs-dir', path.join(dir, 'cli-runs')], { env: noSlurm });
  assert.equal(dry.code, 0, dry.stderr);
  for (const d of ['--array=0-3%2', '--cpus-per-task=1', '--mem=2048M', '--time=60', '--partition=cpu', '--qos=low']) assert.ok(dry.stdout.includes(`#SBATCH ${d}\n`), d);
  assert.match(dry.stdout, /sweep run-trial \S+\/cli-runs\/cli --index "\$\{SLURM_ARRAY_TASK_ID\}"/);
  assert.match(dry.stdout, /exec \S+ \S+ sweep finalize \S+\/cli-runs\/cli\n/);
  assert.equal(existsSync(path.join(dir, 'cli-runs/cli/slurm')), false, 'a dry run writes no scripts');

  const k8s = cli(['sweep', spec, '--launcher', 'kubernetes', '--dry-run', '--runs-dir', path.join(dir, 'cli-runs')], { env: { RESFLOW_IMAGE: 'r:1' } });
  assert.equal(k8s.code, 0, k8s.stderr);
  assert.match(k8s.stdout, /completionMode: Indexed\n\s+completions: 4\n\s+parallelism: 2\n/);
  const unknown = cli(['sweep', spec, '--launcher', 'pbs', '--runs-dir', path.join(dir, 'cli-runs')]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--launcher pbs: unknown launcher \(known: local, slurm, kubernetes\)/);
});

test('resflow sweep --launcher slurm: --partition, --time, --mem, --cpus-per-task, --sbatch-arg over the spec\'s resources, in both scripts and sweep.yaml', () => {
  writeFile(dir, 'exp.yaml', tinyConfigYaml());
  const spec = writeFile(dir, 'flags.yaml', 'name: flags\nconfigs: [exp.yaml]\nspace: { train.optimizer.lr: { grid: [0.001, 0.003] } }\nseeds: [1, 2]\nresources: { threads: 1, memory: 2G, time: 1h, partition: cpu, extra: [--qos=low] }\nparallel: 2\n');
  const runs = path.join(dir, 'flag-runs');
  const args = ['--partition', 'long,short', '--time', '1:30:00', '--mem', '8G', '--cpus-per-task', '4', '--sbatch-arg', '--qos=high', '--sbatch-arg=--exclusive'];
  const dry = cli(['sweep', spec, '--launcher', 'slurm', '--dry-run', '--runs-dir', runs, ...args], { env: { PATH: path.join(dir, 'empty-bin') } });
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stderr, /resources from the command line \(over the spec's\): partition long,short, time 90 min, mem 8192M, cpus-per-task 4, sbatch flags --qos=high --exclusive/);
  const [trials, finalize] = dry.stdout.split(/^# \S+finalize\.sbatch/m) as [string, string];
  const sbatch = (text: string) => text.split('\n').filter((l) => l.startsWith('#SBATCH ')).map((l) => l.slice(8));
  const t = sbatch(trials);
  for (const d of ['--array=0-3%2', '--cpus-per-task=4', '--partition=long,short', '--mem=8192M', '--time=90', '--signal=TERM@120']) assert.ok(t.includes(d), `${d} in ${t.join(' ')}`);
  for (const d of ['--cpus-per-task=1', '--partition=cpu', '--mem=2048M', '--time=60']) assert.ok(!t.includes(d), `the spec's ${d} replaced`);
  // extra flags: the spec's, then the command line's, last of all (a later sbatch flag wins)
  assert.deepEqual(t.slice(-3), ['--qos=low', '--qos=high', '--exclusive']);
  assert.match(trials, /srun --ntasks=1 --cpus-per-task="\$\{SLURM_CPUS_PER_TASK:-4\}"/);
  const f = sbatch(finalize);
  for (const d of ['--partition=long,short', '--mem=8192M', '--time=90', '--qos=low', '--qos=high', '--exclusive']) assert.ok(f.includes(d), `finalize: ${d}`);
  // recorded in sweep.yaml, which `sweep finalize` and a later stage read
  const recorded = parseYaml(readFileSync(path.join(runs, 'flags', 'sweep.yaml'), 'utf8')) as { resources: Record<string, unknown> };
  assert.deepEqual(recorded.resources, { threads: 4, memory: 8192, time: 90, partition: 'long,short', extra: ['--qos=low', '--qos=high', '--exclusive'] });

  // a bad value: exit 2 naming the flag, before the spec is read or anything written
  const bad = cli(['sweep', spec, '--launcher', 'slurm', '--dry-run', '--runs-dir', path.join(dir, 'bad-runs'), '--time', '2x']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^resflow: error: --time 2x: expected minutes or a duration such as 90m, 2h, 1:30:00/m);
  assert.equal(existsSync(path.join(dir, 'bad-runs')), false);
  const refused = (flags: Parameters<typeof checkResourceFlags>[0], launcher = 'slurm') => {
    try {
      checkResourceFlags(flags, launcher);
    } catch (e) {
      assert.ok(e instanceof UsageError);
      return e.message;
    }
    return assert.fail(`accepted ${JSON.stringify(flags)}`);
  };
  assert.match(refused({ time: '0' }), /^--time 0: /);
  assert.match(refused({ time: '1:xx' }), /^--time 1:xx: /);
  assert.match(refused({ mem: '4Q' }), /^--mem 4Q: expected MiB or a size such as 4G/);
  assert.match(refused({ cpusPerTask: '1.5' }), /^--cpus-per-task 1\.5: expected a whole number/);
  assert.match(refused({ cpusPerTask: '0' }), /^--cpus-per-task 0: /);
  assert.match(refused({ partition: 'a b' }), /^--partition "a b": expected a partition name/);
  assert.match(refused({ sbatchArg: ['qos=low'] }), /^--sbatch-arg "qos=low": expected one sbatch flag starting with -/);
  assert.match(refused({ sbatchArg: ['--comment=a\n#SBATCH --x'] }), /^--sbatch-arg .*no line breaks/);
  assert.match(refused({ mem: '4G' }, 'local'), /^--mem is a Slurm setting: use it with --launcher slurm/);
  assert.deepEqual(checkResourceFlags({ time: '45', mem: '512', sbatchArg: [] }, 'slurm'), { time: 45, memory: 512 });
  assert.equal(checkResourceFlags({ sbatchArg: [] }, 'local'), undefined, 'no flags: nothing to check');
});

// ---- a real cluster (scripts/slurm-local.sh) ----

const needCluster = { skip: clusterSkip() };

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Stands in for resflow: records each run of a trial; a trial with a `hold-I` file waits for SIGTERM once. */
const FAKE_RESFLOW = `#!/bin/bash
dir=$3
if [ "$2" = run-trial ]; then
  i=$5
  echo "start cpus=$SLURM_CPUS_PER_TASK restart=\${SLURM_RESTART_COUNT:-0}" >> "$dir/ran-$i"
  if [ -e "$dir/hold-$i" ] && [ "\${SLURM_RESTART_COUNT:-0}" = 0 ]; then
    trap 'echo term >> "$dir/ran-$i"; exit 143' TERM
    touch "$dir/waiting-$i"
    while :; do sleep 0.1; done
  fi
  echo done >> "$dir/ran-$i"
else
  ls "$dir" | grep ran- > "$dir/finalized.tmp"; mv "$dir/finalized.tmp" "$dir/finalized"
fi
`;

test('cluster: every index runs once, a task sent SIGTERM (scancel, or the time-limit warning) requeues itself and runs again, finalize runs after all', needCluster, async () => {
  const sweepDir = path.join(dir, 'cluster-fake');
  mkdirSync(sweepDir, { recursive: true });
  const fake = writeFile(dir, 'fake-resflow.sh', FAKE_RESFLOW);
  writeFile(sweepDir, 'hold-3', '');
  const p = plan({ sweepDir, indices: [0, 1, 3], resflow: ['/bin/bash', fake], parallel: 2 }, { cpus: 1, memoryMb: 200, timeMinutes: 5, partition: undefined, extraArgs: [] });
  // beside it, a trial that outlives a one-minute limit: Slurm's warning (--signal=TERM@30) must reach it
  const limited = path.join(dir, 'cluster-limit');
  mkdirSync(limited, { recursive: true });
  writeFile(limited, 'hold-0', '');
  const pl = plan({ sweepDir: limited, name: 'limit', indices: [0], resflow: ['/bin/bash', fake], parallel: 1 }, { cpus: 1, memoryMb: 200, timeMinutes: 1, partition: undefined, extraArgs: [] });
  assert.ok(directives(trialsScript(pl)).includes('--signal=TERM@30'));
  await new SlurmLauncher().launch(pl, capture(false).opts);
  const { opts } = capture(false);
  const r = await new SlurmLauncher().launch(p, opts);
  const [arrayId] = r.jobIds!;
  await waitFor('trial 3 to start', () => existsSync(path.join(sweepDir, 'waiting-3')), 60_000);
  // what a preemption or the time-limit warning does: SIGTERM to the task's job step
  assert.equal(spawnSync('scancel', ['--signal=TERM', `${arrayId}_3`]).status, 0);
  await waitFor('the finalize job', () => existsSync(path.join(sweepDir, 'finalized')), 90_000);
  assert.equal(readFileSync(path.join(sweepDir, 'finalized'), 'utf8'), 'ran-0\nran-1\nran-3\n');
  for (const i of [0, 1]) assert.equal(readFileSync(path.join(sweepDir, `ran-${i}`), 'utf8'), 'start cpus=1 restart=0\ndone\n');
  assert.equal(readFileSync(path.join(sweepDir, 'ran-3'), 'utf8'), 'start cpus=1 restart=0\nterm\nstart cpus=1 restart=1\ndone\n');
  const log = readFileSync(path.join(sweepDir, 'slurm/logs/trial-3.log'), 'utf8');
  assert.match(log, /interrupted \(exit 143\): requeueing/);
  assert.match(log, /run 2,/);
  assert.deepEqual(readdirSync(path.join(sweepDir, 'slurm/logs')).sort(), ['finalize.log', 'trial-0.log', 'trial-1.log', 'trial-3.log']);

  await waitFor('the time-limited sweep\'s finalize job', () => existsSync(path.join(limited, 'finalized')), 120_000);
  assert.equal(readFileSync(path.join(limited, 'ran-0'), 'utf8'), 'start cpus=1 restart=0\nterm\nstart cpus=1 restart=1\ndone\n');
  assert.match(readFileSync(path.join(limited, 'slurm/logs/trial-0.log'), 'utf8'), /interrupted \(exit 143\): requeueing/);
});
