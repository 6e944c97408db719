import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../base/errors.js';
import { log } from '../base/log.js';
import { formatInspect, inspectFile } from '../data/inspect.js';
import { importCsv, parseRenames } from '../data/import.js';
import { loadExperiment } from '../app/load-experiment.js';
import { describeReject } from '../data/csv.js';
import { startProgress } from '../report/progress.js';
import { collect } from './options.js';

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('make, import and inspect data');

  data
    .command('synth')
    .description('generate a synthetic search funnel with ground truth (train/valid/eval files)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--preset <name>', 'tiny (~100k rows), small (~1M), medium (~10M)', 'tiny')
    .option('--seed <n>', 'random seed (same seed, same data)', '1')
    .option('--format <fmt>', 'parquet or arrow', 'parquet')
    .addHelpText('after', '\nExample:\n  resflow data synth --preset small --seed 7 --out datasets/small')
    .action(async (o: { out: string; preset: string; seed: string; format: string }) => {
      const { synthesize, PRESETS } = await import('../data/synth.js');
      if (!(o.preset in PRESETS)) throw new UsageError(`--preset ${o.preset}: expected one of ${Object.keys(PRESETS).join(', ')}`);
      if (o.format !== 'parquet' && o.format !== 'arrow') throw new UsageError(`--format ${o.format}: expected parquet or arrow`);
      const seed = Number(o.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed ${o.seed}: expected a non-negative integer`);
      const progress = startProgress({ label: `synth ${o.preset}`, total: 0, unit: 'rows' });
      const t0 = Date.now();
      const summary = await synthesize({
        preset: o.preset as 'tiny',
        seed,
        outDir: o.out,
        format: o.format,
        onProgress: (done, total) => {
          progress.setTotal(total);
          progress.update(done);
        },
      });
      progress.stop();
      for (const split of ['train', 'valid', 'eval'] as const) {
        log.out(`${split.padEnd(5)} ${summary.files[split]}  ${summary.rows[split].toLocaleString('en-US')} rows, ${summary.requests[split].toLocaleString('en-US')} requests`);
      }
      log.info(`done in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    });

  data
    .command('inspect')
    .description('schema, rows, requests, rows per stage, label rates per stage, label nesting checks')
    .argument('<file>', 'Parquet, Arrow IPC or CSV file')
    .option('--config <file>', 'take column roles from an experiment config')
    .option('--request <col>', 'request column (default: guessed, e.g. request_id, search_id)')
    .option('--user <col>', 'user column')
    .option('--stage <col>', 'stage column')
    .option('--label <name=col>', 'label column, e.g. --label purchase=conversion (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  resflow data inspect datasets/tiny/train.parquet')
    .action(async (file: string, o: { config?: string; request?: string; user?: string; stage?: string; label: string[]; json?: boolean }) => {
      const roles: { request?: string; user?: string; stage?: string; labels: Record<string, string> } = { labels: {} };
      if (o.config) {
        const c = loadExperiment(o.config).config.data.columns;
        Object.assign(roles, { request: c.request ?? undefined, user: c.user ?? undefined, stage: c.stage ?? undefined, labels: { ...c.labels } });
      }
      if (o.request) roles.request = o.request;
      if (o.user) roles.user = o.user;
      if (o.stage) roles.stage = o.stage;
      Object.assign(roles.labels, parseRenames(o.label.map((l) => l)));
      const report = await inspectFile(path.resolve(file), roles);
      log.out(o.json ? JSON.stringify(report, null, 2) : formatInspect(report));
    });

  data
    .command('split')
    .description('split one Parquet file into train/valid/eval files, keeping every request whole and contiguous (runs in DuckDB)')
    .argument('<file>', 'Parquet file, one row per candidate, requests contiguous')
    .requiredOption('--out <dir>', 'folder for train.parquet, valid.parquet and eval.parquet (existing files are not replaced)')
    .option('--by <how>', 'request: seeded hash of the request id; time: requests ordered by --time-column, cut at the fractions', 'request')
    .option('--fractions <f>', 'fractions of requests for train, valid and eval', '0.8,0.1,0.1')
    .option('--request <col>', 'request column', 'request_id')
    .option('--time-column <col>', 'time column (with --by time); a request\'s time is its earliest row\'s')
    .option('--seed <n>', 'seed of the request hash (with --by request)', '1')
    .addHelpText('after', '\nExamples:\n  resflow data split logs.parquet --out data/split\n  resflow data split logs.parquet --by time --time-column ts --fractions 0.7,0.15,0.15 --out data/by-time')
    .action(async (file: string, o: { out: string; by: string; fractions: string; request: string; timeColumn?: string; seed: string }) => {
      const { splitFile, parseFractions, SPLIT_NAMES } = await import('../data/split.js');
      if (o.by !== 'request' && o.by !== 'time') throw new UsageError(`--by ${o.by}: expected request or time`);
      const seed = Number(o.seed);
      if (!/^\d+$/.test(o.seed) || !Number.isSafeInteger(seed)) throw new UsageError(`--seed ${o.seed}: expected a non-negative integer`);
      const r = await splitFile({ input: path.resolve(file), outDir: path.resolve(o.out), by: o.by, fractions: parseFractions(o.fractions), requestColumn: o.request, timeColumn: o.timeColumn, seed });
      for (const s of SPLIT_NAMES) log.out(`${s.padEnd(5)} ${r.files[s]}  ${r.rows[s].toLocaleString('en-US')} rows, ${r.requests[s].toLocaleString('en-US')} requests`);
    });

  data
    .command('import')
    .description('convert CSV (as public data sets ship) to Parquet, renaming columns to the data contract')
    .argument('<csv...>', 'CSV file(s) with a header row')
    .requiredOption('--out <file>', 'output .parquet file')
    .option('--rename <old=new>', 'rename a column (repeatable), e.g. --rename search_id=request_id', collect, [])
    .option('--select <cols>', 'comma-separated columns to keep (names after renaming)')
    .option('--delimiter <c>', 'field delimiter (default: the one the header line splits on: , tab ; or |)')
    .option('--skip-bad-lines', 'leave out lines with the wrong number of fields, bad quoting or a value of the wrong type, and say how many (default: such a line is an error)')
    .addHelpText(
      'after',
      '\nExamples:\n  resflow data import aliexpress/train.csv --out ae-train.parquet \\\n      --rename search_id=request_id --rename conversion=purchase\n  resflow data import ali-ccp/train.csv --out ccp-train.parquet',
    )
    .action(async (inputs: string[], o: { out: string; rename: string[]; select?: string; delimiter?: string; skipBadLines?: boolean }) => {
      const r = await importCsv({
        inputs,
        out: o.out,
        rename: parseRenames(o.rename),
        select: o.select?.split(',').map((s) => s.trim()).filter(Boolean),
        delimiter: o.delimiter,
        skipBadLines: o.skipBadLines === true,
      });
      const skipped = r.skipped ? `; skipped ${r.skipped.toLocaleString('en-US')} bad line${r.skipped === 1 ? '' : 's'} (the first: ${describeReject(r.firstSkipped!)})` : '';
      log.out(`wrote ${o.out}: ${r.rows.toLocaleString('en-US')} rows, ${r.columns.length} columns${skipped}`);
    });
}
