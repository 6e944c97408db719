/** Choosing and starting the compute backend for a use case. */
import type { ExperimentConfig } from '../config/experiment.js';
import type { Reporter } from './reporter.js';

export type BackendName = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/**
 * Starts the backend the config (or `override`) asks for; returns its description, which goes into
 * run.json because numbers differ across it (e.g. whether the native matmul ran).
 */
export async function setupBackend(config: ExperimentConfig, reporter: Reporter, override?: string): Promise<string> {
  return (await startBackend(config, reporter, override)).detail;
}

/** setupBackend, with the WebGPU adapter on `webgpu` (run.json's `gpu_adapter`). */
export async function startBackend(config: ExperimentConfig, reporter: Reporter, override?: string): Promise<{ detail: string; adapter?: Record<string, unknown> }> {
  const { initBackend } = await import('../kernels/backend.js');
  const requested = (override ?? config.runtime.backend) as BackendName;
  const { describeSparseKernels, nativeEmbeddingsUnavailableReason } = await import('../kernels/sparse-kernels.js');
  const info = await initBackend(requested, { threads: config.runtime.threads });
  const detail = `${info.detail}; embeddings: ${describeSparseKernels({ l2: config.train.embedding_l2 })}`;
  reporter.info(`backend: ${detail}`);
  if (nativeEmbeddingsUnavailableReason()) reporter.debug(`native embedding kernels not used: ${nativeEmbeddingsUnavailableReason()}`);
  return info.adapter ? { detail, adapter: { ...info.adapter } } : { detail };
}
