/**
 * Sizes checked against the machine before anything is allocated: each embedding table is a
 * Float32Array of (rows × dim) values, plus, with Adam or Adagrad, an index of 4 bytes a row for
 * the optimizer state, which itself is allocated per row as training touches rows
 * (models/embeddings.ts, kernels/row-state.ts) and so is not counted here: it depends on the data.
 * A table that could not be allocated is a config error naming the key
 * (README: bad config exits 2 naming the key), found while checking the config, before any run
 * folder exists, instead of "Invalid typed array length" in the middle of starting a run.
 * The estimate is read from the config section alone (config sits below models in the layering).
 */
import { totalmem } from 'node:os';
import { constants } from 'node:buffer';
import type { ExperimentConfig } from './experiment.js';
import { formatPath, type Path } from './schema.js';

export interface MachineLimits {
  /** Bytes of memory of the machine (os.totalmem()). */
  memory: number;
  /** The most values one typed array can hold in this Node.js. */
  maxArrayLength: number;
}

export const thisMachine = (): MachineLimits => ({ memory: totalmem(), maxArrayLength: constants.MAX_LENGTH });

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(1)} GiB`;
const count = (n: number) => (n < 1e15 ? n.toLocaleString('en-US') : n.toExponential(2));

/** Bytes a table takes when it is built: its weights, plus the state index with Adam or Adagrad; and how that is counted. */
function builtBytes(c: ExperimentConfig): { bytes: (rows: number, dim: number) => number; what: string } {
  const type = (c.train.embedding_optimizer ?? c.train.optimizer).type;
  if (type === 'sgd') return { bytes: (rows, dim) => rows * dim * 4, what: 'rows × dim × 4 bytes' };
  const moments = type === 'adam' ? 2 : 1;
  return {
    bytes: (rows, dim) => rows * dim * 4 + rows * 4,
    what: `rows × dim × 4 bytes + a 4-byte state index per row; ${type === 'adam' ? 'Adam' : 'Adagrad'} state adds dim × ${4 * moments} bytes per row training touches`,
  };
}

/** Adds an issue for each embedding table this machine cannot hold, and one when all of them together do not fit. */
export function sizeChecks(c: ExperimentConfig, add: (p: Path, message: string) => void, machine: MachineLimits = thisMachine()): void {
  const { bytes: bytesOf, what } = builtBytes(c);
  const reported = new Set<string>();
  let total = 0;
  let largest = { bytes: 0, index: -1 };
  let anyReported = false;
  c.features.forEach((f, i) => {
    if (f.type === 'numeric' || f.buckets === undefined) return; // vocabulary sizes are known only once the file is read
    const rows = f.buckets + 1; // one more row for missing ids (data/encode.ts)
    const dim = f.dim ?? (c.model.embedding_dim as number);
    const values = rows * dim;
    const bytes = bytesOf(rows, dim);
    total += bytes;
    if (bytes > largest.bytes) largest = { bytes, index: i };
    const tooLong = values > machine.maxArrayLength;
    if (!tooLong && bytes <= machine.memory) return;
    // Name the factor that makes the table absurd: the bucket count, or the embedding size.
    const key: Path = rows >= dim ? ['features', i, 'buckets'] : f.dim !== undefined ? ['features', i, 'dim'] : ['model', 'embedding_dim'];
    const id = formatPath(key);
    anyReported = true;
    if (reported.has(id)) return;
    reported.add(id);
    const table = `the embedding table of \`${f.name}\` (${count(rows)} rows × ${count(dim)} dims)`;
    add(
      key,
      tooLong
        ? `${table} would hold ${count(values)} values, more than the ${count(machine.maxArrayLength)} one array can hold`
        : `${table} would need ${gib(bytes)} (${what}); this machine has ${gib(machine.memory)}`,
    );
  });
  if (!anyReported && total > machine.memory && largest.index >= 0) {
    const f = c.features[largest.index]!;
    add(
      ['features'],
      `the embedding tables together would need ${gib(total)} (${what}); this machine has ${gib(machine.memory)}; the largest is \`${f.name}\` (features[${largest.index}], ${gib(largest.bytes)})`,
    );
  }
}
