export { destinationTop, prepareCopy, type CopySpec, type PreparedCopy } from './copy-instruction.js';
export type { SourceRoot } from './sources.js';
export { resolveInRoot } from './root-path.js';
export { resolveChown, lookupUser, lookupGroup, type Owner } from './passwd.js';
export { parseChmod } from './chmod.js';
export { isTarArchive, extractTarInto } from './archive.js';
export { isUrl } from './fetch-url.js';
