/**
 * The build plan: stages with typed instructions, FROM resolved with the global ARGs, the
 * dependency graph between stages, and the stages the target needs in dependency order.
 */
import type { DockerfileAST } from './ast.js';
import { DockerfileError, columnOf, type SourceLocation } from './errors.js';
import type { ArgInstruction, FromInstruction, Instruction } from './instructions.js';
import { parseDockerfile } from './parser.js';
import { formatPlatform, hostPlatform, parsePlatform, type PlatformSpec } from './platform.js';
import { expandInstruction, type ScopeSettings } from './scope.js';
import { processWordWithMatches } from './shell-lex.js';
import { typeInstruction, type TypingContext } from './typed.js';

export interface PlanOptions {
  /** Name used in messages when `source` is text; default `Dockerfile`. */
  file?: string;
  /** --build-arg values. */
  buildArgs?: Readonly<Record<string, string>>;
  /** --target stage name; default the last stage. */
  target?: string;
  /** Target platform (`linux/arm64`); default the host's. */
  platform?: string;
  /** Platform the build runs on; default the host's. */
  buildPlatform?: string;
}

/** Where a stage's root filesystem or a `--from` comes from. */
export type StageSource = { type: 'scratch' } | { type: 'stage'; index: number } | { type: 'image'; ref: string };

export interface PlanStage {
  index: number;
  /** `AS name`, lowercased. */
  name?: string | undefined;
  /** The name, or `stage-N` for an unnamed stage (BuildKit's naming). */
  id: string;
  from: FromInstruction;
  /** FROM's image after expansion with the global ARGs. */
  baseName: string;
  base: StageSource;
  /** `FROM --platform=` after expansion; undefined = the target platform. */
  platform?: PlatformSpec;
  /** Instructions after FROM, typed, words unexpanded (see StageScope / expandInstruction). */
  instructions: Instruction[];
  /** Stages this one needs: its base stage, `COPY --from`, `RUN --mount from=`. Sorted. */
  dependsOn: number[];
  /** Images referenced by `COPY --from` or `RUN --mount from=` (not stages). */
  images: string[];
  location: SourceLocation;
  /** Why this stage cannot be built (e.g. its FROM expands to nothing); only fatal when the stage is needed. */
  problem?: DockerfileError;
}

export interface Plan extends ScopeSettings {
  file: string;
  ast: DockerfileAST;
  /** `# syntax=` as written (recorded; never pulled). */
  syntax?: string | undefined;
  /** ARG instructions before the first FROM. */
  metaArgs: ArgInstruction[];
  stages: PlanStage[];
  target: PlanStage;
  /** Stages the target needs, dependencies first, the target last. */
  needed: PlanStage[];
  targetPlatform: PlatformSpec;
  buildPlatform: PlatformSpec;
  /** --build-arg names no ARG declares (docker warns about these). */
  unusedBuildArgs: string[];
}

const proxyArgs = ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((k) => [k, k.toLowerCase()]);

export function predefinedArgs(target: PlatformSpec, build: PlatformSpec, targetStage: string): Map<string, string> {
  return new Map([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETSTAGE', targetStage || 'default'],
  ]);
}

/** Builds the plan; throws DockerfileError (one line, file:line:column) for anything BuildKit would refuse. */
export function buildPlan(source: string | DockerfileAST, opts: PlanOptions = {}): Plan {
  const ast = typeof source === 'string' ? parseDockerfile(source, { file: opts.file }) : source;
  const file = ast.file;
  const ctx: TypingContext = { file, lines: ast.lines };
  const buildArgs = { ...(opts.buildArgs ?? {}) };
  const at = (line: number, message: string, needle?: string) =>
    new DockerfileError(message, { file, line, column: columnOf(ast.lines[line - 1] ?? '', needle) });

  // Type every instruction and group them into stages.
  const metaArgs: ArgInstruction[] = [];
  const stageParts: { from: FromInstruction; instructions: Instruction[] }[] = [];
  for (const node of ast.instructions) {
    const ins = typeInstruction(node, ctx);
    if (ins.kind === 'FROM') stageParts.push({ from: ins, instructions: [] });
    else if (stageParts.length === 0) {
      if (ins.kind !== 'ARG') {
        throw at(
          node.startLine,
          `${node.keyword.toUpperCase()} before the first FROM: only ARG may come before FROM (no build stage in current context)`,
          node.keyword,
        );
      }
      metaArgs.push(ins);
    } else stageParts[stageParts.length - 1]!.instructions.push(ins);
  }
  if (stageParts.length === 0) {
    throw new DockerfileError('the Dockerfile contains no stages to build: add a FROM line', { file, line: ast.instructions.at(-1)?.endLine ?? 1 });
  }

  const buildPlatform = opts.buildPlatform ? parsePlatform(opts.buildPlatform) : hostPlatform();
  const targetPlatform = opts.platform ? parsePlatform(opts.platform) : buildPlatform;
  const targetName = opts.target ?? stageParts[stageParts.length - 1]!.from.stageName ?? '';

  // Global scope: predefined args (overridable), then the ARGs before FROM in order.
  const globalArgs = predefinedArgs(targetPlatform, buildPlatform, targetName);
  for (const k of globalArgs.keys()) if (k in buildArgs) globalArgs.set(k, buildArgs[k]!);
  const declared = new Set<string>();
  for (const ins of metaArgs) {
    for (const a of ins.args) {
      declared.add(a.key);
      let value: string | undefined = Object.prototype.hasOwnProperty.call(buildArgs, a.key) ? buildArgs[a.key] : undefined;
      if (value === undefined && a.value !== undefined) {
        try {
          value = processWordWithMatches(a.value, globalArgs, { escapeToken: ast.escapeToken }).result;
        } catch (e) {
          throw new DockerfileError((e as Error).message, ins.location);
        }
      }
      if (value !== undefined) globalArgs.set(a.key, value);
    }
  }

  // Stages: FROM expanded with the global args; a base naming an earlier stage builds on it.
  const byName = new Map<string, number>();
  const stages: PlanStage[] = stageParts.map(({ from, instructions }, index) => {
    const stage: PlanStage = {
      index,
      name: from.stageName,
      id: from.stageName ?? `stage-${index}`,
      from,
      baseName: from.image,
      base: { type: 'image', ref: from.image },
      instructions,
      dependsOn: [],
      images: [],
      location: from.location,
    };
    try {
      const r = processWordWithMatches(from.image, globalArgs, { escapeToken: ast.escapeToken });
      stage.baseName = r.result;
      if (r.result === '') throw at(from.location.line, `base name (${from.image}) should not be blank: set the ARG it uses or give it a default`, from.image);
      if (from.platform !== undefined) {
        const p = processWordWithMatches(from.platform, globalArgs, { escapeToken: ast.escapeToken }).result;
        if (p === '') throw at(from.location.line, `empty platform value from expression ${from.platform}`, from.platform);
        stage.platform = parsePlatform(p);
      }
    } catch (e) {
      stage.problem =
        e instanceof DockerfileError
          ? e
          : new DockerfileError((e as Error).message, {
              file,
              line: from.location.line,
              column: columnOf(ast.lines[from.location.line - 1] ?? '', from.image),
            });
    }
    const baseStage = byName.get(stage.baseName);
    if (baseStage !== undefined) stage.base = { type: 'stage', index: baseStage };
    else if (stage.baseName === 'scratch') stage.base = { type: 'scratch' };
    else stage.base = { type: 'image', ref: stage.baseName };
    if (from.stageName) byName.set(from.stageName, index);
    return stage;
  });

  // Dependencies: base stage, COPY --from, RUN --mount from=.
  for (const stage of stages) {
    const deps = new Set<number>();
    if (stage.base.type === 'stage') deps.add(stage.base.index);
    const refer = (ins: Instruction, from: string) => {
      const src = resolveFrom(stages, byName, from, ins, file, ast.lines);
      if (src.type === 'stage') deps.add(src.index);
      else if (src.type === 'image' && !stage.images.includes(src.ref)) stage.images.push(src.ref);
    };
    for (const ins of stage.instructions) {
      const target = ins.kind === 'ONBUILD' ? undefined : ins;
      if (target?.kind === 'COPY' && target.from !== undefined) refer(target, target.from);
      if (target?.kind === 'RUN') for (const m of target.mounts) if (m.from) refer(target, m.from);
      if (ins.kind === 'ARG') for (const a of ins.args) declared.add(a.key);
    }
    stage.dependsOn = [...deps].sort((a, b) => a - b);
  }

  let target: PlanStage | undefined;
  if (opts.target) {
    target = [...stages].reverse().find((s) => s.name === opts.target!.toLowerCase()); // a repeated name means its last stage, as in BuildKit
    if (!target) {
      const names = stages.filter((s) => s.name).map((s) => s.name);
      throw new DockerfileError(
        `target stage "${opts.target}" could not be found${names.length ? ` (stages: ${names.join(', ')})` : ' (no stage has a name)'}`,
        { file, line: 1 },
      );
    }
  } else target = stages[stages.length - 1]!;

  const needed = dependencyOrder(stages, target, file, ast.lines);
  for (const s of needed) {
    if (s.problem) throw s.problem;
    // Syntax of the words expanded later (quotes, `${...}`), so a typo fails now and not after minutes of RUN.
    for (const ins of s.instructions) expandInstruction(ins, new Map(), { escapeToken: ast.escapeToken, skipUnsetEnv: true });
  }

  const proxyEnv: Record<string, string> = {};
  for (const k of proxyArgs) if (Object.prototype.hasOwnProperty.call(buildArgs, k)) proxyEnv[k] = buildArgs[k]!;
  const predefined = new Set(predefinedArgs(targetPlatform, buildPlatform, '').keys());
  const unusedBuildArgs = Object.keys(buildArgs).filter((k) => !declared.has(k) && !predefined.has(k) && !proxyArgs.includes(k));

  return {
    file,
    ast,
    syntax: ast.directives.syntax,
    escapeToken: ast.escapeToken,
    metaArgs,
    stages,
    target,
    needed,
    targetPlatform,
    buildPlatform,
    globalArgs,
    buildArgs,
    proxyEnv,
    unusedBuildArgs,
  };
}

/**
 * `--from=` / `from=` value → a stage (by name or index) or an image. Variables are refused,
 * as in BuildKit: define a stage with `FROM ${VAR} AS alias` instead.
 */
function resolveFrom(stages: PlanStage[], byName: Map<string, number>, from: string, ins: Instruction, file: string, lines: readonly string[]): StageSource {
  const loc = { file, line: ins.location.line, column: columnOf(lines[ins.location.line - 1] ?? '', from) };
  if (processWordWithMatches(from, new Map()).result !== from) {
    throw new DockerfileError(`variable expansion is not supported for --from (${from}): define a stage with FROM using a global ARG and copy from it`, loc);
  }
  const named = byName.get(from.toLowerCase());
  if (named !== undefined) return { type: 'stage', index: named };
  if (/^-?\d+$/.test(from)) {
    const i = Number(from);
    if (i < 0 || i >= stages.length) throw new DockerfileError(`invalid stage index ${from}: the Dockerfile has stages 0 to ${stages.length - 1}`, loc);
    return { type: 'stage', index: i };
  }
  return from === 'scratch' ? { type: 'scratch' } : { type: 'image', ref: from };
}

/** The stages `target` needs, dependencies before dependents; refuses cycles. */
function dependencyOrder(stages: PlanStage[], target: PlanStage, file: string, lines: readonly string[]): PlanStage[] {
  const state = new Map<number, 'visiting' | 'done'>();
  const out: PlanStage[] = [];
  const visit = (s: PlanStage) => {
    const st = state.get(s.index);
    if (st === 'done') return;
    if (st === 'visiting') {
      throw new DockerfileError(`circular dependency detected on stage: ${s.id}`, {
        file,
        line: s.location.line,
        column: columnOf(lines[s.location.line - 1] ?? ''),
      });
    }
    state.set(s.index, 'visiting');
    for (const d of s.dependsOn) visit(stages[d]!);
    state.set(s.index, 'done');
    out.push(s);
  };
  visit(target);
  return out;
}

/** Looks a `COPY --from` / mount `from=` value up in a plan (for the builder). */
export function resolveStageRef(plan: Plan, from: string): StageSource {
  const byName = new Map(plan.stages.filter((s) => s.name).map((s) => [s.name!, s.index]));
  const named = byName.get(from.toLowerCase());
  if (named !== undefined) return { type: 'stage', index: named };
  if (/^\d+$/.test(from) && Number(from) < plan.stages.length) return { type: 'stage', index: Number(from) };
  return from === 'scratch' ? { type: 'scratch' } : { type: 'image', ref: from };
}
