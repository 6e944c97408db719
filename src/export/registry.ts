/** Export formats by name (`resflow export --format NAME`); a new format is a module of this folder added here. */
import { UsageError } from '../base/errors.js';
import type { Exporter } from './exporter.js';
import { onnxExporter } from './onnx.js';

export type { Exporter, ExportedFile, ExportResult } from './exporter.js';

export const EXPORTERS: readonly Exporter[] = [onnxExporter];

export function exporterFor(format: string): Exporter {
  const found = EXPORTERS.find((e) => e.format === format);
  if (!found) throw new UsageError(`--format ${format}: unknown export format; known: ${EXPORTERS.map((e) => e.format).join(', ')}`);
  return found;
}
