/**
 * The `webgpu` backend: @tensorflow/tfjs-backend-webgpu on Dawn's Node bindings (the `webgpu`
 * package), README.md "Backends". Both packages are optional dependencies and are only ever loaded
 * by a dynamic `import()` of a module name held in a variable.
 *
 * The adapter: the one Dawn offers for `powerPreference: 'high-performance'`, else (Mesa's GL path)
 * a compatibility-mode one. Dawn's options come from RESFLOW_WEBGPU_OPTIONS (whitespace-separated,
 * e.g. `backend=opengles`). A software adapter (lavapipe, llvmpipe, SwiftShader: flagged as a fallback
 * adapter or recognised by its name) is used only when `webgpu` is asked for by name; `auto` skips it,
 * so `auto` never gets slower than `wasm`.
 *
 * tfjs-webgpu cannot read a GPU tensor synchronously in Node (its readSync draws through an
 * OffscreenCanvas), so resflow reads tensors with `await t.data()` (readTensors()), which also leaves
 * the values cached for a later dataSync(); an uncached synchronous read is a clear error here.
 */
import * as tf from '@tensorflow/tfjs';
import { RuntimeFailure, UsageError } from '../base/errors.js';
import { existsSync, readdirSync } from 'node:fs';
import { installWebgpuShims, type Gpu, type GpuAdapter } from './webgpu-shims.js';

/** The optional packages, with the versions package.json pins. */
export const WEBGPU_PACKAGES = ['webgpu@0.6.2', '@tensorflow/tfjs-backend-webgpu@4.22.0'] as const;

/** The adapter as run.json records it (`gpu_adapter`). */
export interface WebgpuAdapterRecord {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  is_fallback_adapter: boolean;
  /** A fallback adapter, or one whose name says it renders in software (llvmpipe, SwiftShader). */
  software: boolean;
  feature_level: 'core' | 'compatibility';
  /** RESFLOW_WEBGPU_OPTIONS as given to Dawn's create(). */
  dawn_options: string[];
}

export type WebgpuProbe =
  | { ok: true; adapter: WebgpuAdapterRecord }
  | { ok: false; reason: string; adapter?: WebgpuAdapterRecord };

interface DawnModule {
  create(options: string[]): Gpu;
  globals: Record<string, unknown>;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

/** Dawn's options from RESFLOW_WEBGPU_OPTIONS. */
export function dawnOptions(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['RESFLOW_WEBGPU_OPTIONS'] ?? '').split(/\s+/).filter((s) => s !== '');
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n').find((l) => l.trim() !== '') ?? msg).trim();
}

/** What run.json records of an adapter; `software` by the fallback flag or by name (Mesa's GL path is not flagged). */
export function adapterRecord(adapter: GpuAdapter, options: string[]): WebgpuAdapterRecord {
  const i = adapter.info;
  const fallback = i.isFallbackAdapter === true;
  const names = `${i.architecture} ${i.device} ${i.description}`;
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    is_fallback_adapter: fallback,
    software: fallback || SOFTWARE_NAMES.test(names),
    feature_level: adapter.featureLevel === 'compatibility' || !adapter.features.has('core-features-and-limits') ? 'compatibility' : 'core',
    dawn_options: options,
  };
}

/** One line naming the adapter, for logs and run.json's backend string. */
export function describeAdapter(a: WebgpuAdapterRecord): string {
  const name = [a.vendor, a.architecture, a.description || a.device].filter((s) => s !== '').join(' ');
  const notes = [a.software ? 'software' : 'hardware', a.is_fallback_adapter ? 'fallback adapter' : '', a.feature_level === 'compatibility' ? 'compatibility mode' : ''];
  return `${name} (${notes.filter((s) => s !== '').join(', ')})`;
}

let probe: Promise<{ result: WebgpuProbe; gpu?: Gpu; adapter?: GpuAdapter; dawn?: DawnModule }> | null = null;

/** Loads Dawn and asks it for an adapter, once per process. */
function probeAdapter(): ReturnType<typeof probeOnce> {
  probe ??= probeOnce();
  return probe;
}

async function probeOnce(): Promise<{ result: WebgpuProbe; gpu?: Gpu; adapter?: GpuAdapter; dawn?: DawnModule }> {
  const options = dawnOptions();
  const dawnName: string = 'webgpu'; // a variable, so TypeScript does not resolve it
  let dawn: DawnModule;
  try {
    dawn = (await import(dawnName)) as DawnModule;
  } catch (e) {
    return { result: { ok: false, reason: `the optional package 'webgpu' is not installed or does not load (${firstLine(e)})` } };
  }
  // Mesa's EGL needs a platform without a display server for the GL path.
  if (options.some((o) => /^backend=opengl(es)?$/.test(o))) process.env['EGL_PLATFORM'] ??= 'surfaceless';
  let gpu: Gpu;
  try {
    gpu = dawn.create(options);
  } catch (e) {
    return { result: { ok: false, reason: `Dawn refused the options [${options.join(' ')}] (RESFLOW_WEBGPU_OPTIONS): ${firstLine(e)}` } };
  }
  let adapter: GpuAdapter | null = null;
  for (const request of [{ powerPreference: 'high-performance' }, { powerPreference: 'high-performance', featureLevel: 'compatibility' }]) {
    adapter = await gpu.requestAdapter(request).catch(() => null);
    if (adapter !== null) break;
  }
  if (adapter === null) {
    const how = options.length ? `with RESFLOW_WEBGPU_OPTIONS='${options.join(' ')}'` : 'with its default options';
    return {
      result: {
        ok: false,
        reason:
          `Dawn found no WebGPU adapter ${how}: no Vulkan driver (a GPU's, or Mesa's lavapipe 25+) and no usable GL ` +
          `(RESFLOW_WEBGPU_OPTIONS=backend=opengles with Mesa's EGL); README.md, "Backends", says how to get one`,
      },
    };
  }
  return { result: { ok: true, adapter: adapterRecord(adapter, options) }, gpu, adapter, dawn };
}

/** Whether (and which) WebGPU adapter is there, without starting the backend. */
export async function webgpuAdapter(): Promise<WebgpuProbe> {
  return (await probeAdapter()).result;
}

/** Where the Vulkan loader looks for drivers' manifests (ICDs) on Linux. */
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/local/etc/vulkan/icd.d'];

/**
 * Why `auto` need not load Dawn at all: no Vulkan driver manifest and no RESFLOW_WEBGPU_OPTIONS
 * (saves loading Dawn, and its "Couldn't load Vulkan" warning, on every machine without one);
 * null when it is worth asking Dawn.
 */
export function autoSkipReason(env: NodeJS.ProcessEnv = process.env): string | null {
  if (process.platform !== 'linux') return null;
  if (dawnOptions(env).length > 0 || env['VK_ICD_FILENAMES'] || env['VK_DRIVER_FILES']) return null;
  const found = ICD_DIRS.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
  return found ? null : `no Vulkan driver manifest in ${ICD_DIRS.join(', ')} and RESFLOW_WEBGPU_OPTIONS is unset`;
}

/**
 * Starts tfjs's webgpu backend. `allowSoftware` false (auto) refuses a software adapter with a
 * reason instead. Returns the adapter, or why the backend cannot be used.
 */
export async function activateWebgpu(allowSoftware: boolean): Promise<WebgpuProbe> {
  if (!allowSoftware) {
    const skip = autoSkipReason();
    if (skip !== null) return { ok: false, reason: skip };
  }
  const p = await probeAdapter();
  if (!p.result.ok || !p.gpu || !p.adapter || !p.dawn) return p.result;
  const adapter = p.result.adapter;
  if (adapter.software && !allowSoftware) {
    return { ok: false, reason: `the only adapter is a software one (${describeAdapter(adapter)}); ask for --backend webgpu by name to use it`, adapter };
  }
  if (tf.getBackend() !== 'webgpu') {
    installWebgpuShims(p.gpu, p.adapter, p.dawn.globals);
    const tfjsWebgpu: string = '@tensorflow/tfjs-backend-webgpu';
    try {
      await import(tfjsWebgpu);
    } catch (e) {
      return { ok: false, reason: `the optional package '@tensorflow/tfjs-backend-webgpu' is not installed or does not load (${firstLine(e)})`, adapter };
    }
    if (tf.findBackendFactory('webgpu') == null) return { ok: false, reason: "@tensorflow/tfjs-backend-webgpu loaded but registered no 'webgpu' backend", adapter };
    let ok = false;
    try {
      ok = await tf.setBackend('webgpu');
    } catch (e) {
      return { ok: false, reason: `tfjs's webgpu backend failed to start: ${firstLine(e)}`, adapter };
    }
    if (!ok) return { ok: false, reason: "tfjs's webgpu backend failed to start (see the error above)", adapter };
    await tf.ready();
    guardSyncReads(tf.backend());
  }
  return p.result;
}

/** Replaces tfjs-webgpu's OffscreenCanvas readSync (no canvas in Node) with a clear error for uncached tensors. */
function guardSyncReads(backend: tf.KernelBackend): void {
  const be = backend as unknown as { readSync(id: object): unknown; tensorMap: { get(id: object): { values?: unknown; dtype: string } | undefined }; resflowGuarded?: boolean };
  if (be.resflowGuarded === true) return; // a switch back to webgpu finds it guarded already
  be.resflowGuarded = true;
  const original = be.readSync.bind(be);
  be.readSync = (dataId: object) => {
    const d = be.tensorMap.get(dataId);
    if (d !== undefined && d.values == null && d.dtype !== 'string' && d.dtype !== 'complex64') {
      throw new RuntimeFailure('webgpu: a synchronous read of a tensor still on the GPU (read it with readTensors() first)');
    }
    return original(dataId);
  };
}

/** The UsageError for `--backend webgpu` when the backend cannot start. */
export function webgpuUnavailable(reason: string): UsageError {
  return new UsageError(
    [
      `backend 'webgpu' is not available: ${reason}.`,
      `It needs the optional packages ${WEBGPU_PACKAGES.join(' and ')} (npm install installs them from the`,
      'npm registry alone) and a WebGPU adapter: a GPU driver with Vulkan, or a software one (README.md, "Backends").',
    ].join('\n'),
  );
}
