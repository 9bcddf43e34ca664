export { build, type BuildOptions, type BuildResult } from './build.js';
export { BuildStepError, BuildCancelledError, cancellation } from './errors.js';
export { type SecretSource, type NamedContext } from './solve-context.js';
export { parseNamedContext } from './named-context.js';
