/** The training progress display as a trainer callback: a bar per epoch, its summary line and the validation line. */
import type { Progress } from '../report/progress.js';
import type { TrainerCallback } from '../train/callbacks.js';
import type { ExperimentConfig } from '../config/experiment.js';
import type { Reporter } from './reporter.js';

const perSecond = (samples: number, seconds: number): string => Math.round(samples / Math.max(seconds, 1e-3)).toLocaleString('en-US');

export function trainingProgress(config: ExperimentConfig, reporter: Reporter): TrainerCallback {
  let bar: Progress | undefined;
  return {
    onEpochBegin({ epoch, epochs, trainRows }) {
      bar = reporter.progress({ label: `epoch ${epoch + 1}/${epochs}`, total: trainRows, unit: 'rows' });
    },
    onBatchEnd({ rowsRead, sums }) {
      const fields: Record<string, string> = { loss: (sums.loss / sums.steps).toFixed(4) };
      config.tasks.forEach((t, k) => (fields[t.name] = (sums.tasks[k]! / sums.steps).toFixed(4)));
      fields['samples/s'] = perSecond(sums.samples, sums.seconds);
      bar?.update(rowsRead, fields);
    },
    onEpochEnd({ epoch, epochs, sums, seconds, row }) {
      const { samples, steps } = sums;
      bar?.stop(`epoch ${epoch + 1}/${epochs}: ${samples.toLocaleString('en-US')} samples in ${seconds.toFixed(1)}s (${perSecond(samples, seconds)} samples/s), loss ${(sums.loss / Math.max(steps, 1)).toFixed(4)}`);
      bar = undefined;
      const val = Object.entries(row).filter(([k]) => k.startsWith('val_'));
      if (val.length) reporter.info(`  validation: ${val.map(([k, v]) => `${k.replace(/^val_/, '')} ${Number(v).toFixed(4)}`).join(', ')}`);
    },
    onTrainAbort() {
      bar?.stop();
      bar = undefined;
    },
  };
}
