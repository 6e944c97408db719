/**
 * The export use case: a trained run's model in a serving format (docs/serving.md). The run is
 * loaded through loadTrainedRun, so a damaged run folder (a missing or truncated model file, an
 * edited config) is refused with exit 2 naming the file before anything is written.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeAtomic, writeFailure } from '../runs/atomic.js';
import { runPath } from '../runs/layout.js';
import { exporterFor } from '../export/registry.js';
import type { LoadedRun } from './evaluate-run.js';
import type { Reporter } from './reporter.js';

export interface ExportOptions {
  format: string;
  /** The main file; default `<run>/export/<the format's default name>` (e.g. model.onnx). */
  out?: string;
}

export interface ExportRunResult {
  /** Every file written, the main one first. */
  files: string[];
}

export function exportRun({ run, bundle }: LoadedRun, opts: ExportOptions, reporter: Reporter): ExportRunResult {
  const exporter = exporterFor(opts.format);
  const main = path.resolve(opts.out ?? path.join(runPath(run.dir, 'export'), exporter.defaultName));
  const dir = path.dirname(main);
  const result = exporter.export(bundle, path.basename(main));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw writeFailure(dir, err);
  }
  // Companions first, the main file last: a model file present means its features.json is too.
  const files = result.files.map((f) => path.join(dir, f.name));
  for (let i = result.files.length - 1; i >= 0; i--) writeAtomic(files[i]!, result.files[i]!.data);
  reporter.info(`exported ${bundle.config.model.type} as ${exporter.format}: ${result.summary}`);
  return { files };
}
