/** `resflow export`: a trained run's model in a serving format (docs/serving.md). */
import type { Command } from 'commander';
import { log } from '../base/log.js';
import { loadTrainedRun } from '../app/evaluate-run.js';
import { exportRun } from '../app/export-run.js';
import { consoleReporter } from './reporter.js';

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('export a trained run for serving (ONNX graph plus features.json); prints the files written')
    .argument('<run>', 'run folder, e.g. runs/quickstart/<version>')
    .option('--format <name>', 'export format (onnx)', 'onnx')
    .option('--out <file>', 'the model file (default <run>/export/model.onnx); features.json goes beside it')
    .option('--backend <name>', 'auto, tensorflow, webgpu, wasm or cpu (for loading the model)')
    .addHelpText('after', '\nExamples:\n  resflow export runs/quickstart/<version> --format onnx --out serving/model.onnx\n\nInputs, outputs and the id hashing a server must reproduce: docs/serving.md.')
    .action(async (dir: string, o: { format: string; out?: string; backend?: string }) => {
      const { exporterFor } = await import('../export/registry.js');
      exporterFor(o.format); // an unknown format is refused before the model is loaded
      const loaded = await loadTrainedRun(dir, consoleReporter, { backend: o.backend });
      const { files } = exportRun(loaded, { format: o.format, out: o.out }, consoleReporter);
      for (const f of files) log.out(f);
    });
}
