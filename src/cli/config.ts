import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { configJsonSchema, loadExperiment } from '../app/load-experiment.js';
import { log } from '../base/log.js';
import { collect } from './options.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('check, print and describe experiment configs');
  config
    .command('check')
    .description('validate a config: schema, defaults, cross-references (exit 2 with the reason if bad)')
    .argument('<config>', 'YAML experiment config')
    .option('--set <path=value>', 'override a key (repeatable), e.g. --set train.epochs=3', collect, [])
    .addHelpText('after', '\nExample:\n  resflow config check configs/quickstart.yaml')
    .action((file: string, o: { set: string[] }) => {
      const { config: c, chain } = loadExperiment(file, { overrides: o.set });
      log.out(`ok: ${file} (experiment ${c.name}; ${c.tasks.length} tasks, ${c.features.length} features, model ${c.model.type}${chain.length > 1 ? `; extends ${chain.slice(1).join(' -> ')}` : ''})`);
    });
  config
    .command('print')
    .description('print the resolved config: extends merged, overrides applied, defaults filled in')
    .argument('<config>', 'YAML experiment config')
    .option('--set <path=value>', 'override a key (repeatable)', collect, [])
    .option('--json', 'print JSON instead of YAML')
    .addHelpText('after', '\nExample:\n  resflow config print configs/quickstart.yaml --set train.batch_size=512')
    .action((file: string, o: { set: string[]; json?: boolean }) => {
      const { config: c } = loadExperiment(file, { overrides: o.set });
      log.out(o.json ? JSON.stringify(c, null, 2) : stringify(c).trimEnd());
    });
  config
    .command('schema')
    .description('emit the JSON Schema of configs, for editor validation and completion')
    .option('-o, --out <file>', 'write to a file instead of stdout')
    .addHelpText('after', '\nExample:\n  resflow config schema --out schema/config.schema.json\n  then start a config with: # yaml-language-server: $schema=../schema/config.schema.json')
    .action((o: { out?: string }) => {
      const text = JSON.stringify(configJsonSchema(), null, 2) + '\n';
      if (o.out) {
        writeFileSync(o.out, text);
        log.info(`wrote ${o.out}`);
      } else process.stdout.write(text);
    });
}
