import type { Command } from 'commander';

/** train / eval / compare: registered by their modules as they land. */
export function registerRunCommands(_program: Command): void {}
