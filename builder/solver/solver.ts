import { buildStage } from './stage-builder.js';
import type { Plan } from './plan.js';
import type { SolveContext } from './solve-context.js';
import type { StageResult } from './stage-result.js';

/**
 * Builds the plan's target: every needed stage starts at once and waits for the stages it refers to,
 * so independent stages run in parallel. The first failure cancels the rest.
 */
export async function solve(ctx: Omit<SolveContext, 'stage' | 'stageLabel'>, plan: Plan, abort: AbortController): Promise<StageResult> {
  const results = new Map<number, Promise<StageResult>>();
  const full: SolveContext = {
    ...ctx,
    stage: (index) => {
      const r = results.get(index);
      if (!r) throw new Error(`stage ${index} is not part of this build`);
      return r;
    },
    stageLabel: (index) => {
      const s = plan.stages[index]!;
      if (s.name) return s.name;
      return index === plan.target.index ? '' : s.id;
    },
  };
  for (const stage of plan.needed) {
    if (stage.problem) throw stage.problem;
    const p = (async () => {
      await Promise.resolve();
      return buildStage(full, stage);
    })();
    p.catch(() => abort.abort());
    results.set(stage.index, p);
  }
  // Surface the first real failure, not a cancellation it caused in another stage.
  const settled = await Promise.allSettled(plan.needed.map((s) => results.get(s.index)!));
  const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
  if (failures.length) throw failures.find((f) => !/cancelled/.test(f.message)) ?? failures[0];
  return results.get(plan.target.index)!;
}
