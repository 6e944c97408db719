/** `resflow predict`: score unlabelled rows with a trained run (src/app/predict-run.ts). */
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../base/errors.js';
import { log } from '../base/log.js';
import { loadTrainedRun } from '../app/evaluate-run.js';
import { consoleReporter } from './reporter.js';

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('score rows that carry features only (no labels, no stage) with a trained run; writes request, passed columns, p_<task> and fused')
    .argument('<run>', 'run folder, e.g. runs/quickstart/<version>')
    .requiredOption('--data <files...>', 'data files to score (Parquet or Arrow IPC)')
    .option('--out <file>', 'output file, .parquet or .csv', 'predictions.parquet')
    .option('--pass <columns>', 'input columns to copy to the output, separated by commas')
    .option('--fusion <spec>', 'fuse the task scores this way instead of the run\'s config, e.g. additive:ctr=1,ctcvr=2')
    .option('--backend <name>', 'auto, tensorflow, webgpu, wasm or cpu')
    .addHelpText(
      'after',
      '\nExamples:\n  resflow predict runs/quickstart/<version> --data today.parquet --out scores.parquet\n  resflow predict runs/quickstart/<version> --data today.parquet --out scores.csv --pass item_id,user_id --fusion multiplicative:ctr=1,ctcvr=0.5',
    )
    .action(async (dir: string, o: { data: string[]; out: string; pass?: string; fusion?: string; backend?: string }) => {
      const pass = o.pass === undefined ? [] : o.pass.split(',').map((s) => s.trim());
      if (pass.some((s) => s === '')) throw new UsageError(`--pass ${o.pass}: expected column names separated by commas`);
      const { parseFusionSpec } = await import('../metrics/fusion.js');
      const fusion = o.fusion ? parseFusionSpec(o.fusion) : undefined;
      const { formatFromPath } = await import('../data/write.js');
      if (formatFromPath(o.out) === 'arrow') throw new UsageError(`--out ${o.out}: expected a .parquet or .csv file`);
      const loaded = await loadTrainedRun(dir, consoleReporter, { backend: o.backend });
      if (fusion) for (const t of Object.keys(fusion.weights)) if (!loaded.bundle.taskNames.includes(t)) throw new UsageError(`--fusion ${o.fusion}: no task named \`${t}\`; tasks: ${loaded.bundle.taskNames.join(', ')}`);
      const { predictRun } = await import('../app/predict-run.js');
      const result = await predictRun(loaded, { files: o.data.map((f) => path.resolve(f)), out: o.out, pass, fusion }, consoleReporter);
      consoleReporter.info(`wrote ${result.rows.toLocaleString('en-US')} rows (${result.columns.join(', ')}) to ${o.out}`);
      log.out(o.out);
    });
}
