export { defaultRoot, defaultConfigFile } from './paths.js';
export { ConfigError, validateConfig, loadConfigFile } from './load.js';
export { tsbuildConfigSchema, type TsbuildConfig } from './schema.js';
export { registryConfigSchema, type RegistryConfig, duration, byteSize, listenAddress } from './registry-schema.js';
