export { defaultRoot, defaultConfigFile } from './paths.js';
export { ConfigError, validateConfig, loadConfigFile } from './load.js';
export { tsbuildConfigSchema, type TsbuildConfig } from './schema.js';
