/** The solver's view of the frontend: the plan, scopes and typed instructions it walks. */
export {
  buildPlan,
  resolveStageRef,
  StageScope,
  runCommandLine,
  parseOnbuildTrigger,
  DockerfileError,
  type Plan,
  type PlanStage,
  type StageSource,
  type Instruction,
  type RunMount,
} from '../frontend/index.js';
export type {
  RunInstruction,
  CopyInstruction,
  AddInstruction,
  FromInstruction,
} from '../frontend/index.js';
