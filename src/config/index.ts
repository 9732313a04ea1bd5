// The config module's public surface.
export type { Config, LogLevel, UpstreamsConfig } from './types.js';
export { loadConfig, loadConfigFile, type LoadOptions, type LoadResult } from './load.js';
export { ConfigError, ValueSyntaxError, isConfigError } from './errors.js';
export { DEFAULTS } from './defaults.js';
export { formatDuration, parseGoDuration } from './duration.js';
export { formatSize, parseSize } from './size.js';
export { ENV_KEYS, envVarName } from './env.js';
