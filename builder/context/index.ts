export { BuildContext } from './build-context.js';
export { DockerignoreMatcher, cleanRelative, type MatchState, type MatchResult } from './dockerignore.js';
export { compilePattern, matchPath, hasWildcards, PatternError } from './glob.js';
export { walkTree, walkEntries, listTree, batches, walkOrder, presentInTree, byteOrder, type TreeEntry, type WalkFilter } from './walk.js';
export { TreeChecksummer } from './checksum.js';
export { defaultDockerfile, contextDirProblem } from './dockerfile-name.js';
