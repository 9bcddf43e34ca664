import { promises as fs } from 'node:fs';
import { join, posix } from 'node:path';
import { destinationTop, prepareCopy, resolveInRoot, type CopySpec, type SourceRoot } from '../copy/index.js';
import { fsPath, unpackImageLayers } from '../snapshot/index.js';
import type { StepHandle } from '../progress/index.js';
import { cacheKey, imageCacheKey } from './build-cache.js';
import { BuildStepError } from './errors.js';
import type { StageScope } from '../frontend/index.js';
import { layerStep, type StageState } from './layer-step.js';
import { lowersOf, mountReadOnly, type ReadOnlyRootfs } from './overlay.js';
import { resolveStageRef, type AddInstruction, type CopyInstruction } from './plan.js';
import type { SolveContext } from './solve-context.js';

/** Where COPY --from reads: a stage's or an image's rootfs, mounted read-only for the step. */
async function fromRoot(ctx: SolveContext, from: string): Promise<{ view: ReadOnlyRootfs; key: string; label: string }> {
  const ref = resolveStageRef(ctx.plan, from);
  if (ref.type === 'stage') {
    const result = await ctx.stage(ref.index);
    return { view: await mountReadOnly(ctx.snapshots, result.top), key: result.key, label: `stage ${ctx.plan.stages[ref.index]!.id}` };
  }
  const image = await ctx.bases.resolve(from);
  const top = await unpackImageLayers(
    ctx.store,
    ctx.snapshots,
    image.manifest.layers.map((d, i) => ({ descriptor: d, diffId: image.config.rootfs.diff_ids[i]! })),
  );
  return { view: await mountReadOnly(ctx.snapshots, top?.chainId), key: imageCacheKey(image), label: `image ${image.reference}` };
}

/** Creates the WORKDIR when it is missing (root-owned, 0755, as docker does). */
export async function makeWorkdir(merged: string, dir: string): Promise<void> {
  const host = await resolveInRoot(merged, dir);
  const st = await fs.stat(host).catch(() => undefined);
  if (st?.isDirectory()) return;
  const parts = posix.normalize(dir).split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const p = await resolveInRoot(merged, '/' + parts.slice(0, i).join('/'));
    if (
      await fs.stat(p).then(
        (s) => s.isDirectory(),
        () => false,
      )
    )
      continue;
    await fs.mkdir(p, { mode: 0o755 });
    await fs.chmod(p, 0o755);
  }
}

/** Whether no lower of the stage's rootfs has an entry (a whiteout included) named `top` at its root. */
async function absentBelow(ctx: SolveContext, state: StageState, top: string | undefined): Promise<boolean> {
  if (!top) return false;
  const { dirs } = await lowersOf(ctx.snapshots, state.top);
  for (const dir of dirs)
    if (
      await fs.lstat(fsPath(join(dir, top))).then(
        () => true,
        () => false,
      )
    )
      return false;
  return true;
}

/** COPY and ADD: sources resolved and checksummed for the key, then copied through the overlay's merged view. */
export async function copyStep(
  ctx: SolveContext,
  state: StageState,
  inst: CopyInstruction | AddInstruction,
  scope: StageScope,
  step: StepHandle,
): Promise<void> {
  const from = inst.kind === 'COPY' && inst.from ? scope.expand(inst.from) : undefined;
  const spec: CopySpec = {
    instruction: inst.kind,
    sources: [...inst.sources, ...inst.inlineSources.map((s) => s.path)],
    heredocs: inst.inlineSources.map((s) => ({ name: s.path, content: s.data })),
    dest: inst.dest,
    workdir: state.image.container.WorkingDir || '/',
    ...(inst.chown ? { chown: inst.chown } : {}),
    ...(inst.chmod ? { chmod: inst.chmod } : {}),
    ...(inst.excludes.length ? { exclude: inst.excludes.map((e) => scope.expand(e)) } : {}),
    ...(inst.kind === 'COPY' && inst.parents ? { parents: true } : {}),
    ...(inst.link ? { link: true } : {}),
    ...(inst.kind === 'ADD' && inst.checksum ? { checksum: inst.checksum } : {}),
  };
  let view: ReadOnlyRootfs | undefined;
  let source: SourceRoot;
  let fromKey = 'context';
  if (from) {
    const r = await fromRoot(ctx, from);
    view = r.view;
    fromKey = r.key;
    source = { root: r.view.root, preserveOwnership: true, label: r.label };
  } else {
    source = { root: ctx.context.dir, filter: ctx.context.ignore, preserveOwnership: false, label: 'build context' };
  }
  try {
    let prepared;
    try {
      prepared = await prepareCopy(spec, source, await ctx.store.localDir('tmp'), ctx.checksummer, { checksumSources: !from });
    } catch (e) {
      throw new BuildStepError((e as Error).message, '', inst.location);
    }
    const { heredocs, ...shape } = spec;
    const createdBy = `${inst.kind} ${[...spec.sources, spec.dest].join(' ')}`;
    const key = cacheKey(state.key, inst.kind, JSON.stringify(shape), JSON.stringify(heredocs ?? []), prepared.inputs, fromKey);
    // A COPY into a top-level directory no layer below has needs no overlay: nothing of the lowers is
    // looked at, copied up or hidden, so writing into the upper dir gives the same layer without the
    // mount and unmount processes (a chown by name reads /etc/passwd through the merged view: mounted).
    // decided on a cache miss only: a hit looks at no lower
    const how = async () => (inst.kind === 'COPY' && !spec.chown && (await absentBelow(ctx, state, destinationTop(spec))) ? 'upper-only' : 'mounted');
    try {
      await layerStep(ctx, state, key, createdBy, step, how, async ({ merged, upper }) => {
        try {
          await prepared.apply(merged ?? upper);
        } catch (e) {
          throw new BuildStepError((e as Error).message, '', inst.location);
        }
        // COPY writes no xattrs (ADD's archives may)
        return inst.kind === 'COPY' ? { xattrsOnCopiedUpDirsOnly: true } : {};
      });
    } finally {
      await prepared.dispose();
    }
  } finally {
    await view?.release();
  }
}
