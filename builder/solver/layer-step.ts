import { layerCompression, type ChainID, type Digest } from '../../oci/index.js';
import { chainIdOf } from '../../store/index.js';
import { allXattrFree, commitUpperDir, markXattrFree, unpackLayer } from '../snapshot/index.js';
import type { StepHandle } from '../progress/index.js';
import type { ImageLayer, ImageState } from '../image/index.js';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { cancellation } from './errors.js';
import { trackDir } from '../exec/index.js';
import { lowersOf, mountWritable, type WritableRootfs } from './overlay.js';
import type { SolveContext } from './solve-context.js';
import type { CacheRecord } from './build-cache.js';

/** The part of a stage that moves step by step. */
export interface StageState {
  image: ImageState;
  top: ChainID | undefined;
  key: string;
  /**
   * The time of the latest step: a cache hit keeps the time recorded when the layer was made, so a
   * fully cached rebuild gives the same config and digest (as docker's cache does).
   */
  created: string;
  /** The cache records of this stage's steps and its parent stages' (what mode=min exports). */
  records: Map<Digest, CacheRecord>;
  /** `--no-cache-filter` named this stage: its steps run again (their records are still written). */
  noCache: boolean;
}

function remember(ctx: SolveContext, state: StageState, key: Digest, record: CacheRecord): void {
  state.records.set(key, record);
  ctx.cache.used(key, record);
}

/** Makes sure the snapshot for `layer` on top of `parent` exists (a cache hit from another machine state). */
async function ensureSnapshot(ctx: SolveContext, parent: ChainID | undefined, layer: ImageLayer): Promise<ChainID> {
  const chainId = chainIdOf(parent, layer.diffID);
  await ctx.snapshots.prepare(chainId, parent, async (diffDir) => {
    const blob = await ctx.store.blobs.read(layer.descriptor.digest);
    const unpacked = await unpackLayer(blob, diffDir, {
      compression: layerCompression(layer.descriptor.mediaType) ?? 'auto',
      expectedDiffId: layer.diffID,
      label: `layer ${layer.descriptor.digest}`,
    });
    if (unpacked.xattrPaths === 0) await markXattrFree(ctx.store, chainId);
  });
  return chainId;
}

/**
 * One step that changes the filesystem: a cache hit reuses the recorded layer; a miss mounts an overlay
 * of the current chain, lets `mutate` write into it, turns the upper dir into a layer and keeps the upper
 * dir as the next snapshot. A step that changed nothing adds history with `empty_layer`.
 */
export interface StepFs {
  /** The step's upper dir (becomes the layer). */
  upper: string;
  /** Parent snapshot diff dirs, topmost first. */
  lowers: string[];
  /** The merged view (only when the step asked for a mounted overlay). */
  merged?: string;
}

/** A mounted overlay (the merged view to work in), or only an upper dir (the step writes its changes there itself). */
export type StepMode = 'mounted' | 'upper-only';

export async function layerStep(
  ctx: SolveContext,
  state: StageState,
  key: Digest,
  createdBy: string,
  step: StepHandle,
  /** How the step sees the rootfs; a function is asked only on a cache miss (a hit needs neither). */
  how: StepMode | (() => Promise<StepMode>),
  mutate: (fs: StepFs) => Promise<{ exclude?: string[]; xattrsOnCopiedUpDirsOnly?: boolean } | void>,
): Promise<void> {
  if (!ctx.noCache && !state.noCache) {
    const hit = await ctx.cache.get(key);
    if (hit) {
      remember(ctx, state, key, hit);
      if (ctx.sourceDateEpoch === undefined && hit.created) state.created = hit.created;
      else state.created = ctx.created;
      if (hit.layer) {
        const layer: ImageLayer = { descriptor: hit.layer.descriptor, diffID: hit.layer.diffID };
        state.top = await ensureSnapshot(ctx, state.top, layer);
        state.image.addLayer(layer, createdBy, state.created);
      } else {
        state.image.addEmptyHistory(createdBy, state.created);
      }
      state.key = key;
      step.cached();
      return;
    }
  }
  const mode = typeof how === 'function' ? await how() : how;
  let rootfs: WritableRootfs;
  if (mode === 'mounted') {
    rootfs = await mountWritable(ctx.snapshots, state.top);
  } else {
    const { dirs } = await lowersOf(ctx.snapshots, state.top);
    const base = await ctx.snapshots.tempDir('step');
    const untrack = trackDir(base);
    const upper = join(base, 'upper');
    await fs.mkdir(upper);
    rootfs = {
      merged: '',
      upper,
      lowers: dirs,
      release: async () => undefined,
      discard: async () => {
        await fs.rm(base, { recursive: true, force: true });
        untrack();
      },
    };
  }
  try {
    const result = (await mutate({ upper: rootfs.upper, lowers: rootfs.lowers, ...(mode === 'mounted' ? { merged: rootfs.merged } : {}) })) ?? {};
    await rootfs.release();
    if (ctx.signal.aborted) throw cancellation(ctx.signal);
    const chain = state.top ? (await ctx.snapshots.chain(state.top)).map((snap) => snap.chainId) : [];
    const commit = await commitUpperDir(ctx.store, {
      upper: rootfs.upper,
      lowers: rootfs.lowers,
      lowersXattrFree: await allXattrFree(ctx.store, chain),
      // Uncompressed until an output needs gzip (see image/compress-layers.ts): gzip would be most of the build.
      compression: 'none',
      ...(ctx.sourceDateEpoch !== undefined ? { sourceDateEpoch: ctx.sourceDateEpoch } : {}),
      ...(result.exclude ? { exclude: result.exclude } : {}),
      ...(result.xattrsOnCopiedUpDirsOnly ? { xattrsOnCopiedUpDirsOnly: true } : {}),
    });
    state.created = ctx.created;
    if (commit.emptyLayer) {
      state.image.addEmptyHistory(createdBy, state.created);
      const record: CacheRecord = { emptyLayer: true, created: state.created };
      await ctx.cache.put(key, record);
      remember(ctx, state, key, record);
    } else {
      const layer: ImageLayer = { descriptor: commit.descriptor, diffID: commit.diffId };
      const chainId = chainIdOf(state.top, commit.diffId);
      await ctx.snapshots.adopt(chainId, state.top, rootfs.upper);
      if (commit.xattrFree) await markXattrFree(ctx.store, chainId);
      state.top = chainId;
      state.image.addLayer(layer, createdBy, state.created);
      const record: CacheRecord = { layer: { descriptor: commit.descriptor, diffID: commit.diffId }, emptyLayer: false, created: state.created };
      await ctx.cache.put(key, record);
      remember(ctx, state, key, record);
    }
    state.key = key;
  } finally {
    // After adoption the upper dir lives on as the snapshot; the rest of the scratch dirs go.
    await rootfs.discard();
  }
}
