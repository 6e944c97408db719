/** Saving scored rows: one row per input row with its request, labels, stage, probabilities and fused score. */
import { STAGES } from '../config/experiment.js';
import { UsageError } from '../base/errors.js';
import { formatFromPath, writeTable, type ColumnDef, type ColumnValues } from '../data/write.js';
import { fuseScores } from '../metrics/fusion.js';
import type { Fusion } from './evaluate.js';
import type { ScoredSplit } from './score.js';

/** Writes the predictions file (.parquet or .csv); returns the number of rows written. */
export async function savePredictions(file: string, taskNames: readonly string[], scored: ScoredSplit, fusion: Fusion): Promise<number> {
  const format = formatFromPath(file);
  if (format === 'arrow') throw new UsageError(`--save-predictions ${file}: expected a .parquet or .csv file`);
  const rows = scored.rows;
  const n = rows.length;
  const columns: Record<string, ColumnValues> = { row: Float64Array.from({ length: n }, (_, i) => i) };
  const schema: ColumnDef[] = [{ name: 'row', type: 'int64' }];
  if (rows.request) {
    const keys = scored.requestKeys;
    const numeric = keys.allNumbers();
    columns.request = numeric ? Float64Array.from(rows.request, (r) => keys.keyOf(r) as number) : Array.from(rows.request, (r) => String(keys.keyOf(r)));
    schema.push({ name: 'request', type: numeric ? 'int64' : 'string' });
  }
  columns.stage = Array.from(rows.stage, (s) => STAGES[s]!);
  schema.push({ name: 'stage', type: 'string' });
  for (const [label, values] of rows.labels) {
    columns[label] = Int8Array.from(values);
    schema.push({ name: label, type: 'int8' });
  }
  for (const t of taskNames) {
    columns[`p_${t}`] = scored.probs[t]!;
    schema.push({ name: `p_${t}`, type: 'float32' });
  }
  columns.fused = fuseScores(scored.probs, fusion.mode, fusion.weights);
  schema.push({ name: 'fused', type: 'float64' });
  await writeTable(file, schema, [{ length: n, columns }]);
  return n;
}
