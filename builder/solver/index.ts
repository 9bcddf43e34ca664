export { build, type BuildOptions, type BuildResult } from './build.js';
export { BuildStepError, BuildCancelledError, cancellation } from './errors.js';
export { type SecretSource } from './solve-context.js';
