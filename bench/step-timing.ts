/**
 * Trainer.step part by part, through the trainer's own methods (bench/profile-step.ts,
 * bench/step-phases.ts). On wasm and cpu every kernel has run when its method returns; on webgpu
 * a part that only queues GPU work (the dense update) is paid inside the next part that waits.
 */
import type { EncodedBatch } from '../src/data/encode.js';
import type { Trainer } from '../src/train/trainer.js';

export const STEP_PARTS = ['embedding lookup', 'forward+backward (incl. loss + gradX read)', 'dense update', 'sparse update', 'finish (BN updates, dispose)'] as const;
export type StepPart = (typeof STEP_PARTS)[number];

/** One training step; adds each part's milliseconds to `acc`. */
export async function timedStep(trainer: Trainer, mb: EncodedBatch, acc: Map<StepPart, number>): Promise<void> {
  let t = performance.now();
  const lap = (p: StepPart) => {
    const now = performance.now();
    acc.set(p, (acc.get(p) ?? 0) + now - t);
    t = now;
  };
  const x = trainer.embed(mb);
  lap('embedding lookup');
  const pass = await trainer.forwardBackward(mb, x);
  lap('forward+backward (incl. loss + gradX read)');
  const dense = await trainer.denseUpdate(pass);
  lap('dense update');
  trainer.sparseUpdate(mb, pass);
  lap('sparse update');
  trainer.finishStep(pass, dense);
  lap('finish (BN updates, dispose)');
}
