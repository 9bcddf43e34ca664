/**
 * builder/frontend — Dockerfile text → typed build plan, with BuildKit's `docker/dockerfile:1` rules.
 *
 * Layers, each usable on its own:
 *
 *   parseDockerfile(text, {file})          → DockerfileAST   (directives, continuations, heredocs, flags, args)
 *   dumpAST(ast)                           → BuildKit's s-expression dump (`tsbuild debug dump-ast`)
 *   buildPlan(textOrAst, {buildArgs, target, platform, buildPlatform})
 *                                          → Plan            (typed instructions per stage, FROM resolved,
 *                                                             dependency graph, `needed` stages in order)
 *   checkDockerfile(text, opts)            → CheckProblem[]  (`tsbuild build --check`)
 *
 * Every refusal is a DockerfileError whose message is one line: `Dockerfile:3:1: unknown instruction: FOO`.
 *
 * ## Variable expansion: who expands what, and when
 *
 * BuildKit expands some words at plan time and the rest per step, because the environment of a step
 * includes the base image's ENV, which only the builder knows (after pulling the base):
 *
 * - FROM image and `--platform` expand with the global ARGs (ARGs before the first FROM, --build-arg
 *   values, TARGETPLATFORM/TARGETOS/TARGETARCH/TARGETVARIANT/BUILDPLATFORM/BUILDOS/BUILDARCH/
 *   BUILDVARIANT/TARGETSTAGE). buildPlan does this: `PlanStage.baseName`, `.base`, `.platform`.
 * - Everything else stays unexpanded in the plan. The builder walks each stage with a StageScope:
 *
 *       const scope = new StageScope(plan, stage.base.type === 'stage'
 *           ? { parent: scopeOf[stage.base.index] }         // FROM <stage>: its ENV and ARGs carry over
 *           : { imageEnv: baseImageConfig.config?.Env });    // FROM <image>: the image's ENV
 *                                                            // (PATH defaults to DEFAULT_PATH_ENV)
 *       for (const raw of stage.instructions) {
 *         const ins = scope.apply(raw);   // expanded against the env *before* this instruction
 *         switch (ins.kind) { case 'RUN': run(runCommandLine(ins), scope.runEnvironment(), ins.mounts) ... }
 *       }
 *       imageConfig.Env = [...scope.configEnv].map(([k, v]) => `${k}=${v}`);
 *
 *   apply() expands ENV/LABEL keys and values, ARG defaults (a --build-arg replaces the default; an ARG
 *   without a default inside a stage takes the global ARG's value), ADD/COPY sources, dest, --chown,
 *   --chmod, --checksum and unquoted-delimiter heredoc bodies, WORKDIR, USER, VOLUME, STOPSIGNAL,
 *   EXPOSE (split into words) and RUN --mount values. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK text keeps
 *   `$` for the shell. ARG values are visible to expansion and to RUN (runEnvironment, which also adds
 *   proxy build args such as HTTP_PROXY), but only ENV goes into the image config (configEnv).
 * - For anything else, expandWord(word, env, {escapeToken}) and expandInstruction(ins, env) do the
 *   same expansion with an environment the caller supplies.
 *
 * ONBUILD: the builder parses triggers found in a base image's config with parseOnbuildTrigger and
 * runs them first. COPY --from / RUN --mount from=: see PlanStage.dependsOn/images, resolveStageRef.
 */
export { parseDockerfile, type ParseOptions } from './parser.js';
export type { DockerfileAST, InstructionNode, Heredoc, ParseWarning } from './ast.js';
export type { Directives, EscapeToken } from './directives.js';
export { dumpAST, dumpNode, goQuote } from './dump.js';
export { DockerfileError, type SourceLocation } from './errors.js';
export {
  processWord,
  processWords,
  processWordWithMatches,
  type EnvSource,
  type LexOptions,
  type WordResult,
} from './shell-lex.js';
export type * from './instructions.js';
export type { RunMount, MountType, CacheSharing } from './mounts.js';
export { parseMount } from './mounts.js';
export { typeInstruction, runCommandLine } from './typed.js';
export { buildPlan, resolveStageRef, type Plan, type PlanOptions, type PlanStage, type StageSource } from './plan.js';
export {
  StageScope,
  expandWord,
  expandInstruction,
  type ExpandOptions,
  type ScopeSettings,
  type ScopeStart,
} from './scope.js';
export { DEFAULT_PATH, DEFAULT_PATH_ENV, withDefaultPath } from './stage-defaults.js';
export { checkDockerfile, type CheckProblem, type CheckOptions } from './check.js';
export { parsePlatform, formatPlatform, hostPlatform, normalizePlatform, type PlatformSpec } from './platform.js';
export { parseOnbuildTrigger } from './onbuild.js';
