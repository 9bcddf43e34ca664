export { BuildContext } from './build-context.js';
export { DockerignoreMatcher, cleanRelative } from './dockerignore.js';
export { compilePattern, matchPath, hasWildcards, PatternError } from './glob.js';
export { walkTree, byteOrder, type TreeEntry, type WalkFilter } from './walk.js';
export { TreeChecksummer } from './checksum.js';
