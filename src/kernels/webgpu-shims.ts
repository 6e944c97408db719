/**
 * The Node shims @tensorflow/tfjs-backend-webgpu 4.22 needs on Dawn's `webgpu` package (README.md,
 * "Backends"), kept in this one module:
 *
 * - a `navigator.gpu` global (Node has no WebGPU on `navigator`; the tfjs package registers its
 *   backend only when it finds one while loading), whose `requestAdapter()` hands tfjs the adapter
 *   resflow chose (so a compatibility-mode adapter, which a plain request would not return, works);
 * - `adapter.requestAdapterInfo()`, which this Dawn no longer has (it has `adapter.info`);
 * - Dawn's WebGPU classes and constant namespaces (`GPUBuffer`, `GPUBufferUsage`, `GPUMapMode`, ...)
 *   as globals, which tfjs uses by name.
 */

/** What resflow reads of a GPUAdapterInfo. */
export interface GpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter?: boolean;
}

/** The parts of Dawn's GPUAdapter used here and by tfjs. */
export interface GpuAdapter {
  readonly info: GpuAdapterInfo;
  readonly features: ReadonlySet<string>;
  readonly limits: Record<string, number>;
  readonly featureLevel?: string;
  requestDevice(descriptor?: object): Promise<unknown>;
  requestAdapterInfo?: () => Promise<GpuAdapterInfo>;
}

/** The parts of Dawn's GPU object used here. */
export interface Gpu {
  requestAdapter(options?: object): Promise<GpuAdapter | null>;
  getPreferredCanvasFormat?(): string;
}

/** Installs the shims for `adapter` (of `gpu`); Dawn's `globals` supplies the classes and constants. */
export function installWebgpuShims(gpu: Gpu, adapter: GpuAdapter, globals: Record<string, unknown>): void {
  const g = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(globals)) if (name.startsWith('GPU') && g[name] === undefined) g[name] = value;
  if (!('requestAdapterInfo' in adapter)) {
    Object.defineProperty(adapter, 'requestAdapterInfo', { value: () => Promise.resolve(adapter.info), configurable: true });
  }
  const shim = {
    requestAdapter: () => Promise.resolve(adapter),
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat?.() ?? 'bgra8unorm',
  };
  // Node 21+ has a `navigator` (without `gpu`); Node 20 has none.
  const nav = g['navigator'];
  if (nav !== undefined && nav !== null && typeof nav === 'object') {
    Object.defineProperty(nav, 'gpu', { value: shim, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: shim }, configurable: true, writable: true });
  }
}
