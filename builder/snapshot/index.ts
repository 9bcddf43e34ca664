/**
 * builder/snapshot — layers ⇄ directories.
 *
 * Base images: `unpackImageLayers(store, await openSnapshots(store), layers)` unpacks each layer once into
 * a snapshot dir keyed by chainID (store/snapshots.ts) and returns the top snapshot; pass its chainID to
 * `runInContainer` (builder/exec) as the lower of a step. `unpackLayer(stream, dir, {mode})` applies one
 * layer blob onto a dir (mode `apply` onto a full rootfs; `archive` for ADD of a tar: no whiteouts).
 *
 * After a step: `commitUpperDir(store, {upper, lowers, compression, sourceDateEpoch, exclude})` turns the
 * unmounted overlay upper dir into a layer blob (+ diffID, `emptyLayer`). Then either
 * `snapshots.adopt(chainIdOf(parent, diffId), parent, upper)` to keep the upper dir as the next snapshot
 * (no re-unpack), or remove it.
 */
export { unpackLayer, WHITEOUT_PREFIX, OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, type UnpackMode, type UnpackOptions, type UnpackResult } from './layer-unpack.js';
export { commitUpperDir, planLayer, tarStream, type CommitOptions, type CommitResult } from './layer-from-upper.js';
export { openSnapshots, unpackImageLayers, type LayerRef } from './image-layers.js';
export { allXattrFree, markXattrFree } from './xattr-free.js';
export { decompress, compressor, detectCompression, type ArchiveCompression, type DecompressMode, type CompressOptions } from './compression.js';
export { readTar, encodeHeader, padding, END_OF_ARCHIVE, type TarHeader, type TarEntry, type EntryType } from './tar-format.js';
export { resolveInRoot, resolveInRootSync, cleanInside } from './safe-path.js';
export { LowerView, isWhiteout } from './lower-view.js';
export { readXattrTree, readXattrs, writeXattrs, keepXattr, type XattrMap } from './xattrs.js';
export { decodeName, encodeName, fsPath, readdirNames, readdirNamesSync, readlinkName, readlinkNameSync, byteOrder, mknodName } from './fs-names.js';
