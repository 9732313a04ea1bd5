// The CLI's options, shared with `health`, which reads a running node's command line as the
// CLI read it: knowing which options take a value tells a config file from an option's value.
import type { ParseArgsOptionsConfig } from 'node:util';

export const CLI_OPTIONS = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  'dry-run': { type: 'boolean' },
  name: { type: 'string' },
  host: { type: 'string' },
  origin: { type: 'string' },
  users: { type: 'string' },
  pid: { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

/** Names the config file itself (config/env.ts names it too; importing it would load the YAML parser). */
export const CONFIGURATION_PATH_VAR = 'REGISTRY_CONFIGURATION_PATH';
