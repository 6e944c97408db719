/**
 * The exporter interface and registry (docs/architecture.md, "Where a new thing plugs in"): an
 * export format is a module of this folder behind `Exporter`, registered by format name in registry.ts;
 * `resflow export --format NAME` looks it up.
 */
import type { ModelBundle } from '../models/bundle.js';

/** One file an export produces, named relative to the folder of the main file. */
export interface ExportedFile {
  name: string;
  data: string | Uint8Array;
}

export interface ExportResult {
  /** The main file (e.g. model.onnx) first, then its companions (features.json, vocabularies). */
  files: ExportedFile[];
  /** One line for the person who asked, e.g. sizes and the graph's inputs and outputs. */
  summary: string;
}

export interface Exporter {
  readonly format: string;
  /** The main file's default name (`model.onnx`). */
  readonly defaultName: string;
  /** What the format gives; for `--help` and error messages. */
  readonly description: string;
  /** Builds the files from a trained model; `mainName` is the main file's base name. */
  export(bundle: ModelBundle, mainName: string): ExportResult;
}
