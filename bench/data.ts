/**
 * Reading throughput and peak memory for Parquet (zstd, via DuckDB) and Arrow IPC at ~1M and
 * ~10M rows (all three splits) of the synthetic funnel (generated once into .bench/). Each measurement runs in a
 * fresh child process so its peak RSS is its own. Prints medians of several runs.
 *
 *   npm run bench:data [-- --sizes small,medium --repeats 3]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readBatches, tableInfo } from '../src/data/reader.js';
import { loadConfig } from '../src/config/load.js';
import { BatchEncoder, buildFeaturePlan, encodedBatches, openSplit } from '../src/data/encode.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

const { values: args } = parseArgs({
  options: {
    child: { type: 'string' },
    mode: { type: 'string', default: 'raw' },
    sizes: { type: 'string', default: 'small,medium' },
    repeats: { type: 'string', default: '3' },
  },
});

/** Child: read every split file of a preset folder, print a JSON line with rows, seconds and peak RSS. */
async function child(files: string[], mode: string): Promise<void> {
  const t0 = performance.now();
  let rows = 0;
  if (mode === 'raw') {
    for (const file of files) {
      const info = await tableInfo(file);
      const wanted = info.columns.map((c) => ({ name: c.name, kind: c.kind === 'list' ? ('list' as const) : c.kind === 'string' ? ('string' as const) : ('number' as const) }));
      for await (const b of readBatches(info, wanted, 65536)) rows += b.length;
    }
  } else {
    // Read and encode with the quickstart's feature set (hashing, lists, labels, groups).
    const { config } = loadConfig(path.join(root, 'configs/quickstart.yaml'), { overrides: [`data.train=${JSON.stringify(files)}`] });
    const encoder = new BatchEncoder(config, buildFeaturePlan(config));
    for await (const b of encodedBatches(config, encoder, await openSplit(config, 'train'))) rows += b.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ rows, seconds, peakMiB: (process.resourceUsage().maxRSS * 1024) / 2 ** 20 }) + '\n');
}

/** The three split files of a preset (train + valid + eval: ~1M rows for small, ~10M for medium). */
async function ensureData(preset: string, format: string): Promise<string> {
  const dir = path.join(root, '.bench', `${preset}-${format}`);
  const files = ['train', 'valid', 'eval'].map((s) => path.join(dir, `${s}.${format}`));
  if (!files.every((f) => existsSync(f))) {
    console.log(`generating ${preset} (${format}) into ${dir} ...`);
    const { synthesize } = await import('../src/data/synth.js');
    await synthesize({ preset: preset as 'small', seed: 1, outDir: dir, format: format as 'parquet' });
  }
  return files.join(',');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (args.child) return child(args.child.split(','), args.mode!);
  const results: string[] = [];
  for (const preset of args.sizes!.split(',')) {
    for (const format of ['parquet', 'arrow']) {
      const file = await ensureData(preset, format);
      for (const mode of ['raw', 'encode']) {
        const runs = [];
        for (let r = 0; r < Number(args.repeats); r++) {
          const out = spawnSync(process.execPath, ['--max-old-space-size=8192', fileURLToPath(import.meta.url), '--child', file, '--mode', mode], { encoding: 'utf8' });
          if (out.status !== 0) throw new Error(out.stderr);
          runs.push(JSON.parse(out.stdout.trim().split('\n').pop()!) as { rows: number; seconds: number; peakMiB: number });
        }
        const rate = median(runs.map((r) => r.rows / r.seconds));
        const line = `${preset.padEnd(7)} ${format.padEnd(8)} ${mode === 'raw' ? 'read all columns' : 'read + encode   '}  rows ${runs[0]!.rows.toLocaleString('en-US').padStart(11)}  ${Math.round(rate).toLocaleString('en-US').padStart(10)} rows/s  peak RSS ${median(runs.map((r) => r.peakMiB)).toFixed(0).padStart(5)} MiB  (runs: ${runs.map((r) => Math.round(r.rows / r.seconds).toLocaleString('en-US')).join(', ')})`;
        console.log(line);
        results.push(line);
      }
    }
  }
}

await main();
