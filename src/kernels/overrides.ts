/**
 * The one mechanism by which resflow replaces tfjs kernels: an owner (the wasm transposed-matmul
 * wrappers, the native matmul, ...) registers its kernel for a (kernel, backend) pair in place of
 * the one registered then, which is remembered so that restoring puts it back. Owners stack: the
 * native matmul goes on top of the wasm wrappers and falls back to them.
 */
import * as tf from '@tensorflow/tfjs';
import { quietlySync } from './tf-quiet.js';

/** Who registered a kernel function, for the kernel functions registered here. */
const ownerOf = new WeakMap<tf.KernelFunc, string>();
/** Per `backend/kernel/owner`: what the owner's kernel replaced (undefined when nothing was registered). */
const replaced = new Map<string, tf.KernelConfig | undefined>();

const key = (kernelName: string, backendName: string, owner: string): string => `${backendName}/${kernelName}/${owner}`;

/** The kernel registered now for (kernelName, backendName), if any. */
export function registeredKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  return (tf.getKernel(kernelName, backendName) as tf.KernelConfig | undefined) ?? undefined;
}

/** The owner of kernel function `f` when it was registered through overrideKernel(), else null. */
export function kernelOwner(f: tf.KernelFunc | undefined): string | null {
  return f === undefined ? null : ownerOf.get(f) ?? null;
}

/** The owner of the kernel registered now for (kernelName, backendName); null for tfjs's own or none. */
export function currentOwner(kernelName: string, backendName: string): string | null {
  return kernelOwner(registeredKernel(kernelName, backendName)?.kernelFunc);
}

/**
 * Registers `owner`'s kernel for (kernelName, backendName). `make` gets the kernel registered now
 * (undefined when there is none) and returns the kernel function to use instead; the new config
 * keeps the replaced one's setupFunc and disposeFunc. Does nothing when `owner`'s kernel is the
 * registered one already. Works before or after the backend is initialised.
 */
export function overrideKernel(
  kernelName: string,
  backendName: string,
  owner: string,
  make: (previous: tf.KernelConfig | undefined) => tf.KernelFunc,
): void {
  const previous = registeredKernel(kernelName, backendName);
  if (previous !== undefined && ownerOf.get(previous.kernelFunc) === owner) return;
  const kernelFunc = make(previous);
  ownerOf.set(kernelFunc, owner);
  replaced.set(key(kernelName, backendName, owner), previous);
  quietlySync(() => {
    if (previous !== undefined) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({ ...(previous ?? { kernelName, backendName }), kernelFunc });
  });
}

/**
 * Puts back what `owner`'s last overrideKernel() for (kernelName, backendName) replaced, when
 * `owner`'s kernel is the registered one (or none is). Safe to call when nothing was overridden.
 */
export function restoreKernel(kernelName: string, backendName: string, owner: string): void {
  const k = key(kernelName, backendName, owner);
  if (!replaced.has(k)) return;
  const previous = replaced.get(k);
  replaced.delete(k);
  quietlySync(() => {
    const current = registeredKernel(kernelName, backendName);
    if (current !== undefined && ownerOf.get(current.kernelFunc) === owner) tf.unregisterKernel(kernelName, backendName);
    if (previous !== undefined && registeredKernel(kernelName, backendName) === undefined) tf.registerKernel(previous);
  });
}
