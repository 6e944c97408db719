/** Small ResFlow bundles built from the tiny test config, for the dense-program tests. */
import { loadExperiment } from '../../src/app/load-experiment.js';
import { buildBundle, type ModelBundle } from '../../src/models/bundle.js';
import { tempDir, tinyConfigYaml, writeFile } from './fixtures.js';

/** The tiny config's tasks replaced by three (each with its own label). */
export const THREE_TASKS = `  - { name: ctr, label: click }
  - { name: ctcvr, label: purchase }
  - { name: actr, label: all_click }
`;

/** One task only (the training program's logits then come out of a reshape, not an Unpack). */
export const ONE_TASK = `  - { name: ctr, label: click }
`;

/** A ResFlow bundle (embedding dim 4, hidden [24, 9] unless `model` says otherwise) over the tiny config, with `tasks` if given. */
export function resflowBundle(model: Record<string, unknown>, tasks?: string): ModelBundle {
  const section = { type: 'resflow', embedding_dim: 4, hidden: [24, 9], ...model };
  let yaml = tinyConfigYaml().replace(/^model: .*$/m, `model: ${JSON.stringify(section)}`);
  if (tasks) yaml = yaml.replace(/^tasks:\n(?: {2}- .*\n)+/m, `tasks:\n${tasks}`);
  return buildBundle(loadExperiment(writeFile(tempDir(), 'exp.yaml', yaml)).config);
}
