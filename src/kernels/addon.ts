/**
 * The native addon (native/, native/README.md): the one place that loads
 * native/build/Release/resflow_native.node; callers get its typed interface (native-api.ts).
 *
 * `npm run prepare` tries to build the addon (scripts/build-native.mjs) and carries on without it
 * when it cannot, so every caller must work when loadAddon() returns null.
 *
 * Environment: RESFLOW_NO_NATIVE=1 makes loadAddon() return null.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sgemmSelfCheck } from './sgemm-check.js';
import type { AdamStepFn, AddArraysFn, AdviseHugePagesFn, EmbeddingLookupFn, EmbeddingSgemmFn, EmbeddingUpdateFn, NativeAddon, NativeInfo, ReluBackwardFn, SgemmFn } from './native-api.js';

export type { AdamStepFn, AddArraysFn, AdviseHugePagesFn, EmbeddingLookupFn, EmbeddingSgemmFn, EmbeddingUpdateFn, NativeAddon, NativeInfo, ReluBackwardFn, SgemmFn } from './native-api.js';

const MODULE_FILE = path.join('native', 'build', 'Release', 'resflow_native.node');
const STAMP_FILE = path.join('native', 'build', 'Release', 'resflow_native.json');

let loaded: { addon: NativeAddon | null; reason: string } | null = null;

/** The package root (the folder with resflow's package.json), searched upwards from this file. */
function packageRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'resflow') return dir;
      } catch {
        /* not ours */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/**
 * A module built with -march=native runs only on a CPU with the build CPU's instruction sets;
 * on another it would die of SIGILL (which cannot be caught). The build records the build CPU's
 * flags; refuse the module if this CPU lacks any (Linux; elsewhere there is nothing to compare).
 */
function cpuMismatch(stampPath: string): string | null {
  if (!existsSync(stampPath)) return null;
  let stamp: { cpuFlags?: unknown };
  try {
    stamp = JSON.parse(readFileSync(stampPath, 'utf8')) as { cpuFlags?: unknown };
  } catch {
    return 'its build record is unreadable';
  }
  if (!Array.isArray(stamp.cpuFlags) || process.platform !== 'linux') return null;
  let line: string | undefined;
  try {
    line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
  } catch {
    return null;
  }
  if (line === undefined) return null;
  const have = new Set(line.split(':')[1]!.trim().split(/\s+/));
  const missing = (stamp.cpuFlags as unknown[]).filter((f) => typeof f === 'string' && !have.has(f));
  return missing.length ? `built for a CPU with ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}, which this one lacks` : null;
}

/** The module's functions, each checked to be a function; the later kernels stay undefined when absent. */
function typedAddon(mod: Record<string, unknown>, file: string): NativeAddon | null {
  const fn = <F>(name: string): F | undefined => (typeof mod[name] === 'function' ? (mod[name] as F) : undefined);
  const sgemm = fn<SgemmFn>('sgemm');
  const info = fn<() => NativeInfo>('info');
  if (sgemm === undefined || info === undefined) return null;
  // What the module was built as does not change: asked once (the training path checks the version every step).
  let described: Readonly<NativeInfo> | undefined;
  return {
    sgemm,
    info: () => (described ??= Object.freeze(info())),
    embeddingLookup: fn<EmbeddingLookupFn>('embeddingLookup'),
    embeddingUpdateLazy: fn<EmbeddingUpdateFn>('embeddingUpdateLazy'),
    adamStep: fn<AdamStepFn>('adamStep'),
    reluBackward: fn<ReluBackwardFn>('reluBackward'),
    addArrays: fn<AddArraysFn>('addArrays'),
    embeddingSgemm: fn<EmbeddingSgemmFn>('embeddingSgemm'),
    adviseHugePages: fn<AdviseHugePagesFn>('adviseHugePages'),
    path: file,
  };
}

/**
 * Loads native/build/Release/resflow_native.node once per process. Null (with the reason in
 * addonUnavailableReason()) when RESFLOW_NO_NATIVE=1, when it is not built, was built for a CPU
 * with instruction sets this one lacks, fails to load, or its GEMM fails a quick self-check.
 */
export function loadAddon(): NativeAddon | null {
  if (loaded !== null) return loaded.addon;
  const fail = (reason: string): null => {
    loaded = { addon: null, reason };
    return null;
  };
  if (process.env['RESFLOW_NO_NATIVE'] === '1') return fail('RESFLOW_NO_NATIVE=1');
  const root = packageRoot();
  if (root === null) return fail("resflow's package folder not found");
  const file = path.join(root, MODULE_FILE);
  if (!existsSync(file)) return fail('not built (npm run prepare builds it)');
  const mismatch = cpuMismatch(path.join(root, STAMP_FILE));
  if (mismatch !== null) return fail(`${mismatch}; rebuild with npm run prepare`);
  let mod: Record<string, unknown>;
  try {
    mod = createRequire(import.meta.url)(file) as Record<string, unknown>;
  } catch (e) {
    return fail(`failed to load: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
  }
  const addon = typedAddon(mod, file);
  if (addon === null) return fail('the module lacks sgemm/info');
  let problem: string | null;
  try {
    problem = sgemmSelfCheck(addon.sgemm);
  } catch (e) {
    problem = e instanceof Error ? e.message : String(e);
  }
  if (problem !== null) return fail(`self-check failed: ${problem}`);
  loaded = { addon, reason: '' };
  return addon;
}

/** Why loadAddon() returned null ('' when it loaded, or before the first call). */
export function addonUnavailableReason(): string {
  return loaded?.reason ?? '';
}
