import { ImageState } from '../image/index.js';
import { unpackImageLayers } from '../snapshot/index.js';
import { cacheKey, imageCacheKey } from './build-cache.js';
import { copyStep, makeWorkdir } from './copy-step.js';
import { BuildCancelledError, BuildStepError, cancellation } from './errors.js';
import { layerStep, type StageState } from './layer-step.js';
import { applyMetadata, type StageFlags } from './metadata.js';
import { parseOnbuildTrigger, StageScope, type Instruction, type PlanStage } from './plan.js';
import { runStep } from './run-step.js';
import { fromLine } from './named-context.js';
import type { SolveContext } from './solve-context.js';
import type { StageResult } from './stage-result.js';

interface Started {
  state: StageState;
  scope: StageScope;
  triggers: string[];
}

/** `--no-cache-filter`: matched against the stage's name and its index (BuildKit accepts both). */
function noCacheFor(ctx: SolveContext, stage: PlanStage): boolean {
  return ctx.noCacheStages.has(String(stage.index)) || (stage.name !== undefined && ctx.noCacheStages.has(stage.name.toLowerCase()));
}

/** FROM: a stage, scratch or an image (store or registry); its layers unpacked into snapshots. */
async function startStage(ctx: SolveContext, stage: PlanStage): Promise<Started> {
  const base = stage.base;
  if (base.type === 'stage') {
    const result = await ctx.stage(base.index);
    const image = result.image.clone();
    return {
      state: {
        image,
        top: result.top,
        key: cacheKey('stage', result.key),
        created: result.created,
        records: new Map(result.records),
        noCache: noCacheFor(ctx, stage),
      },
      scope: new StageScope(ctx.plan, { parent: result.scope }),
      triggers: image.takeOnBuild(),
    };
  }
  if (base.type === 'scratch') {
    const image = ImageState.scratch(ctx.platform);
    return {
      state: {
        image,
        top: undefined,
        key: cacheKey('scratch', JSON.stringify(ctx.platform ?? {})),
        created: ctx.created,
        records: new Map(),
        noCache: noCacheFor(ctx, stage),
      },
      scope: new StageScope(ctx.plan, { imageEnv: image.container.Env }),
      triggers: [],
    };
  }
  let resolved;
  try {
    resolved = await ctx.bases.resolve(base.ref, stage.platform);
  } catch (e) {
    throw new BuildStepError((e as Error).message, '', stage.from.location);
  }
  const image = ImageState.fromBase(resolved.config, resolved.manifest.layers, stage.platform ?? ctx.platform);
  const top = await unpackImageLayers(
    ctx.store,
    ctx.snapshots,
    image.layers.map((l) => ({ descriptor: l.descriptor, diffId: l.diffID })),
  );
  return {
    state: {
      image,
      top: top?.chainId,
      key: cacheKey('image', imageCacheKey(resolved)),
      created: ctx.sourceDateEpoch === undefined && resolved.config.created ? resolved.config.created : ctx.created,
      records: new Map(),
      noCache: noCacheFor(ctx, stage),
    },
    scope: new StageScope(ctx.plan, { imageEnv: image.container.Env }),
    triggers: image.takeOnBuild(),
  };
}

function describe(inst: Instruction): string {
  return inst.original.replace(/\s+/g, ' ').trim();
}

/** Runs one stage's instructions in order; returns its image and rootfs chain. */
export async function buildStage(ctx: SolveContext, stage: PlanStage): Promise<StageResult> {
  const label = ctx.stageLabel(stage.index);
  const total = stage.instructions.length + 1;
  const prefix = (i: number | string) => `[${label ? label + ' ' : ''}${i}${typeof i === 'number' ? `/${total}` : ''}]`;
  // BuildKit's line: the expanded base name and the digest it resolved to, not `FROM ${BASE}` as written
  const fromStep = ctx.progress.step(`${prefix(1)} ${await fromLine(ctx, stage, describe(stage.from))}`);
  let started: Started;
  try {
    started = await startStage(ctx, stage);
  } catch (e) {
    fromStep.error((e as Error).message);
    const err = e as BuildStepError;
    throw new BuildStepError(err.message, `${prefix(1)} ${describe(stage.from)}`, err.location ?? stage.from.location, err.outputTail ?? []);
  }
  fromStep.done();
  const { state, scope } = started;
  const flags: StageFlags = { cmdSet: false };
  const triggers = started.triggers.length
    ? parseOnbuildTrigger(started.triggers, { file: `ONBUILD of ${stage.baseName}`, escapeToken: ctx.plan.escapeToken })
    : [];
  const instructions = [...triggers, ...stage.instructions];

  for (const [i, raw] of instructions.entries()) {
    if (ctx.signal.aborted) throw cancellation(ctx.signal);
    const name = i < triggers.length ? `${prefix('ONBUILD')} ${describe(raw)}` : `${prefix(i - triggers.length + 2)} ${describe(raw)}`;
    let inst: Instruction;
    try {
      inst = scope.apply(raw);
    } catch (e) {
      throw new BuildStepError((e as Error).message, name, raw.location);
    }
    // As in BuildKit, an ARG is not a step of its own: its value reaches the keys of the steps that use it —
    // every later RUN (build args are in its environment) and any instruction that expands it — and no
    // other, so changing a build arg leaves a COPY after its ARG cached.
    if (inst.kind === 'ARG') continue;
    const step = ctx.progress.step(name);
    try {
      if (inst.kind === 'RUN') {
        await runStep(ctx, state, inst, scope, step);
      } else if (inst.kind === 'COPY' || inst.kind === 'ADD') {
        await copyStep(ctx, state, inst, scope, step);
      } else if (inst.kind === 'WORKDIR') {
        // docker creates the directory right away (root-owned, 0755), in a layer of its own.
        const text = applyMetadata(state.image, inst, flags)!;
        const dir = state.image.container.WorkingDir!;
        await layerStep(ctx, state, cacheKey(state.key, text), text, step, 'mounted', async ({ merged }) => makeWorkdir(merged!, dir));
      } else {
        const text = applyMetadata(state.image, inst, flags);
        if (text === undefined) throw new Error(`${inst.kind} cannot be used here`);
        state.image.addConfigHistory(text, state.created);
        state.key = cacheKey(state.key, text);
      }
      step.done();
    } catch (e) {
      if (ctx.signal.reason instanceof BuildCancelledError) {
        // whatever the step saw (a killed process, a vanished mount), the build was interrupted
        step.cancelled();
        throw new BuildStepError(ctx.signal.reason.message, name, inst.location, [], undefined, true);
      }
      const err = e instanceof BuildStepError ? e : new BuildStepError((e as Error).message, '', inst.location);
      step.error(err.message);
      throw new BuildStepError(err.message, name, err.location ?? inst.location, err.outputTail, err.exitCode);
    }
  }
  return { image: state.image, top: state.top, key: state.key, scope, created: state.created, records: state.records };
}
