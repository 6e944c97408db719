#!/usr/bin/env node
/**
 * Builds the optional native kernels (native/, an N-API addon) with the node-gyp that npm bundles.
 * Run by `npm run prepare` after tsc. It never fails the install: whatever goes wrong, it prints
 *   resflow: native kernels not built (<reason>); using the wasm kernels and JavaScript loops
 * removes any module left from an earlier build, and exits 0. The full build log of a failed
 * build is kept in native/build-native.log.
 *
 * The build runs in a temporary copy of native/; only a module that loads and multiplies
 * correctly in a child process is moved (by rename) to native/build/Release/resflow_native.node,
 * next to resflow_native.json (what it was built for: -march, the CPU's instruction sets, node).
 *
 * Environment:
 *   RESFLOW_NO_NATIVE=1           skip (the runtime loader honours it too)
 *   RESFLOW_NATIVE_MARCH=<arch>   -march for the compiler (default native), e.g. x86-64-v3
 *   RESFLOW_NATIVE_TIMEOUT=<s>    give up after this many seconds (default 120)
 *   npm_config_node_gyp           node-gyp to use (npm sets it for lifecycle scripts)
 *   npm_config_nodedir            Node headers (npm passes its `nodedir` config this way)
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, cpSync, rmSync, mkdirSync, renameSync, copyFileSync, writeFileSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NATIVE = path.join(ROOT, 'native');
const OUT_DIR = path.join(NATIVE, 'build', 'Release');
const MODULE = 'resflow_native.node';
const LOG = path.join(NATIVE, 'build-native.log');

const t0 = performance.now();
const seconds = () => ((performance.now() - t0) / 1000).toFixed(1);

function removeModule() {
  for (const p of [path.join(OUT_DIR, MODULE), path.join(OUT_DIR, 'resflow_native.json')]) {
    try {
      rmSync(p, { force: true });
    } catch {
      /* nothing to do */
    }
  }
}

/** Thrown to give up; main() reports it, removes what it built and exits 0. */
class NotBuilt extends Error {
  constructor(reason, log) {
    super(reason);
    this.log = log;
  }
}
function notBuilt(reason, log) {
  throw new NotBuilt(reason, log);
}

function report(e) {
  removeModule();
  const reason = e instanceof NotBuilt ? e.message : `unexpected: ${e?.message ?? e}`;
  const log = e instanceof NotBuilt ? e.log : e?.stack;
  if (log !== undefined) {
    try {
      writeFileSync(LOG, log);
    } catch {
      /* a read-only package folder: the one-line reason is all we can give */
    }
  }
  console.log(`resflow: native kernels not built (${reason}); using the wasm kernels and JavaScript loops`);
}

/** The node-gyp entry point: npm's own (npm_config_node_gyp), else the one bundled next to npm. */
function findNodeGyp() {
  const candidates = [];
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm) candidates.push(fromNpm);
  const rel = ['node_modules', 'node-gyp', 'bin', 'node-gyp.js'];
  // npm_execpath: .../npm/bin/npm-cli.js when run by npm.
  const execpath = process.env.npm_execpath;
  if (execpath && /npm/.test(path.basename(execpath))) candidates.push(path.join(path.dirname(execpath), '..', ...rel));
  // The npm on PATH (a symlink to .../npm/bin/npm-cli.js).
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const name of process.platform === 'win32' ? ['npm.cmd', 'npm'] : ['npm']) {
      const p = path.join(dir, name);
      if (!existsSync(p)) continue;
      try {
        candidates.push(path.join(path.dirname(realpathSync(p)), '..', ...rel));
      } catch {
        /* a broken link */
      }
    }
  }
  // Next to this node: <prefix>/bin/node -> <prefix>/lib/node_modules/npm (Unix), <prefix>/node_modules/npm (Windows).
  const prefix = path.dirname(path.dirname(process.execPath));
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm', ...rel));
  candidates.push(path.join(path.dirname(process.execPath), 'node_modules', 'npm', ...rel));
  return candidates.find((c) => existsSync(c) && /\.js$/.test(c)) ?? candidates.find((c) => existsSync(c));
}

/** --nodedir for node-gyp when npm does not pass one, so that it uses local headers, not a download. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.dirname(path.dirname(process.execPath));
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) return [`--nodedir=${prefix}`];
  return [];
}

/** The instruction-set flags of this CPU (Linux), so the loader can refuse a module built for another. */
function cpuIsaFlags() {
  if (process.platform !== 'linux') return null;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
    if (!line) return null;
    const isa = /^(sse|ssse|avx|fma|f16c|bmi|adx|abm|popcnt|lzcnt|movbe|aes|vaes|pclmul|vpclmul|gfni|sha|amx|xop|tbm|cx16|fsgsbase|xsave|asimd|fp|sve|neon)/;
    return [...new Set(line.split(':')[1].trim().split(/\s+/).filter((f) => isa.test(f)))].sort();
  } catch {
    return null;
  }
}

/** Runs a command in its own process group; kills the group on timeout. Resolves {code, out, timedOut}. */
function run(cmd, args, opts, timeoutMs) {
  return new Promise((resolve) => {
    let out = '';
    let timedOut = false;
    let child;
    try {
      child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'], detached: process.platform !== 'win32' });
    } catch (e) {
      resolve({ code: -1, out: String(e), timedOut });
      return;
    }
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => {
      out += `\n${e}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), out, timedOut });
    });
  });
}

/** The most telling line of a failed build's output. */
function reasonFrom(out, code) {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  const pick =
    lines.find((l) => /error:/i.test(l) && !/^gyp (ERR|info)/.test(l)) ??
    lines.find((l) => /gyp ERR! (stack )?Error:|not found|No such file|Could not find|ENOENT/i.test(l)) ??
    lines.find((l) => /^gyp ERR!/.test(l));
  const text = (pick ?? `node-gyp exited with code ${code}`).replace(/^gyp ERR! (stack )?/, '');
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

const VERIFY = `
const m = require(process.argv[1]);
const M = 37, N = 45, K = 29, A = new Float32Array(M * K), B = new Float32Array(K * N), C = new Float32Array(M * N);
for (let i = 0; i < A.length; i++) A[i] = ((i * 7919) % 13) - 6;
for (let i = 0; i < B.length; i++) B[i] = ((i * 104729) % 11) - 5;
for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
  m.sgemm(ta, tb, M, N, K, A, B, C, 2);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += (ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
    if (C[i * N + j] !== s) throw new Error('wrong product at ' + i + ',' + j + ' (' + ta + ',' + tb + ')');
  }
}
process.stdout.write(JSON.stringify(m.info()));
`;

async function main() {
  if (process.env.RESFLOW_NO_NATIVE === '1') {
    console.log('resflow: native kernels skipped (RESFLOW_NO_NATIVE=1); using the wasm kernels and JavaScript loops');
    return;
  }
  if (!existsSync(path.join(NATIVE, 'binding.gyp'))) notBuilt('native/binding.gyp is missing');
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) notBuilt("npm's node-gyp was not found");
  const march = process.env.RESFLOW_NATIVE_MARCH || 'native';
  if (!/^[A-Za-z0-9_.+-]+$/.test(march)) notBuilt(`bad RESFLOW_NATIVE_MARCH '${march}'`);
  const timeoutS = Number(process.env.RESFLOW_NATIVE_TIMEOUT || 120);

  // Build in a temporary copy, so that a failed or interrupted build never leaves a module behind.
  let work;
  try {
    work = mkdtempSync(path.join(tmpdir(), 'resflow-native-'));
    cpSync(path.join(NATIVE, 'binding.gyp'), path.join(work, 'binding.gyp'));
    cpSync(path.join(NATIVE, 'src'), path.join(work, 'src'), { recursive: true });
  } catch (e) {
    notBuilt(`cannot prepare a build folder: ${e.message}`);
  }
  const cleanup = () => {
    try {
      rmSync(work, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  };
  try {
    const args = [nodeGyp, 'rebuild', '--release', '--jobs=max', ...nodedirArgs(), `--resflow_march=${march}`];
    const env = { ...process.env, npm_config_loglevel: process.env.npm_config_loglevel ?? 'warn' };
    const r = await run(process.execPath, args, { cwd: work, env }, timeoutS * 1000);
    if (r.timedOut) notBuilt(`build took over ${timeoutS} s`, r.out);
    if (r.code !== 0) notBuilt(reasonFrom(r.out, r.code), r.out);
    const built = path.join(work, 'build', 'Release', MODULE);
    if (!existsSync(built)) notBuilt('node-gyp produced no module', r.out);

    // Load and check it in a child process: a crash (e.g. an illegal instruction) stays there.
    let info;
    try {
      const json = execFileSync(process.execPath, ['-e', VERIFY, built], { timeout: 30_000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      info = JSON.parse(json);
    } catch (e) {
      const msg = (e.stderr || e.message || String(e)).split('\n').find((l) => /Error|error/.test(l)) ?? e.message;
      notBuilt(`the built module failed its check: ${String(msg).trim().slice(0, 120)}`, `${r.out}\n${e.stderr ?? ''}`);
    }

    // Install: copy next to the destination, then rename over it.
    mkdirSync(OUT_DIR, { recursive: true });
    const tmp = path.join(OUT_DIR, `.${MODULE}.${process.pid}`);
    copyFileSync(built, tmp);
    renameSync(tmp, path.join(OUT_DIR, MODULE));
    const buildSeconds = Number(seconds());
    const took = seconds();
    writeFileSync(
      path.join(OUT_DIR, 'resflow_native.json'),
      `${JSON.stringify(
        {
          march,
          platform: process.platform,
          arch: process.arch,
          node: process.version,
          napi: process.versions.napi,
          cpuFlags: march === 'native' ? cpuIsaFlags() : null,
          info,
          builtAt: new Date().toISOString(),
          buildSeconds,
        },
        null,
        2,
      )}\n`,
    );
    rmSync(LOG, { force: true });
    console.log(`resflow: native kernels built (${info.simd}, ${info.mr}x${info.nr} kernel, -march=${march}) in ${took} s`);
  } finally {
    cleanup();
  }
}

try {
  await main();
} catch (e) {
  try {
    report(e);
  } catch {
    console.log('resflow: native kernels not built (unexpected error); using the wasm kernels and JavaScript loops');
  }
}
process.exitCode = 0;
