/**
 * `tsbuild build --check`: evaluates a Dockerfile without building and reports problems the way
 * `docker build --check` does (BuildKit's lint rules), plus anything that would stop the build.
 */
import type { DockerfileAST, InstructionNode } from './ast.js';
import { parseCheckDirective } from './directives.js';
import { DockerfileError } from './errors.js';
import type { Instruction } from './instructions.js';
import { parseDockerfile } from './parser.js';
import { buildPlan, predefinedArgs, type Plan, type PlanOptions } from './plan.js';
import { hostPlatform } from './platform.js';
import { StageScope } from './scope.js';
import { processWordWithMatches } from './shell-lex.js';
import { typeInstruction } from './typed.js';

export interface CheckProblem {
  file: string;
  line: number;
  column: number;
  /** BuildKit's rule name (`JSONArgsRecommended`), or `UnknownInstruction` / `InvalidDockerfile` for errors. */
  rule: string;
  message: string;
  /** Errors stop a build; warnings do not. */
  severity: 'error' | 'warning';
}

export interface CheckOptions extends PlanOptions {
  /** ENV of a base image when known (`KEY=value`), so `UndefinedVar` does not flag its variables. */
  imageEnv?: (ref: string) => readonly string[] | undefined;
}

const reservedStageNames = new Set(['context', 'scratch']);
const secretWord = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const allowedWord = /(?:_|^)(?:public|file|version)(?:_|$)/i;

export function checkDockerfile(text: string, opts: CheckOptions = {}): CheckProblem[] {
  const file = opts.file ?? 'Dockerfile';
  const problems: CheckProblem[] = [];
  const error = (e: DockerfileError, rule = 'InvalidDockerfile') =>
    problems.push({ file: e.file, line: e.line, column: e.column, rule, message: e.reason, severity: 'error' });

  let ast: DockerfileAST;
  try {
    ast = parseDockerfile(text, { file });
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
    error(e);
    return problems;
  }
  const warn = (node: { startLine: number; column: number }, rule: string, message: string) =>
    problems.push({ file, line: node.startLine, column: node.column, rule, message, severity: 'warning' });

  for (const w of ast.warnings) problems.push({ file, line: w.line, column: 1, rule: w.rule, message: w.message, severity: 'warning' });

  const typed = new Map<InstructionNode, Instruction>();
  for (const node of ast.instructions) {
    try {
      typed.set(node, typeInstruction(node, { file, lines: ast.lines }));
    } catch (e) {
      if (!(e instanceof DockerfileError)) throw e;
      error(e, e.reason.startsWith('unknown instruction') ? 'UnknownInstruction' : 'InvalidDockerfile');
    }
  }

  lintNodes(ast, typed, warn);

  if (problems.every((p) => p.severity === 'warning')) {
    let plan: Plan | undefined;
    try {
      plan = buildPlan(ast, opts);
    } catch (e) {
      if (!(e instanceof DockerfileError)) throw e;
      error(e, /target stage/.test(e.reason) ? 'TargetNotFound' : 'InvalidDockerfile');
    }
    if (plan) lintPlan(plan, opts, warn);
  }

  const { skip } = parseCheckDirective(ast.directives.check);
  return problems.filter((p) => p.severity === 'error' || (skip !== 'all' && !skip.has(p.rule))).sort((a, b) => a.line - b.line || a.column - b.column);
}

type Warn = (node: { startLine: number; column: number }, rule: string, message: string) => void;

function lintNodes(ast: DockerfileAST, typed: Map<InstructionNode, Instruction>, warn: Warn): void {
  let lower = 0;
  let upper = 0;
  for (const n of ast.instructions) {
    if (n.keyword === n.keyword.toLowerCase()) lower++;
    else if (n.keyword === n.keyword.toUpperCase()) upper++;
  }
  const majorityLower = lower > upper;
  const stageNames = new Set<string>();
  let once = new Map<string, InstructionNode>();
  let hasWorkdir = false;
  let shellSet = false;
  for (const n of ast.instructions) {
    const kw = n.keyword;
    if (majorityLower && kw !== kw.toLowerCase())
      warn(n, 'ConsistentInstructionCasing', `Command '${kw}' should match the case of the command majority (lowercase)`);
    if (!majorityLower && kw !== kw.toUpperCase())
      warn(n, 'ConsistentInstructionCasing', `Command '${kw}' should match the case of the command majority (uppercase)`);
    const ins = typed.get(n);
    if (!ins) continue;
    switch (ins.kind) {
      case 'FROM': {
        once = new Map();
        hasWorkdir = false;
        shellSet = false;
        const asWord = n.args[1];
        const written = n.args[2];
        if (written !== undefined && written !== written.toLowerCase()) warn(n, 'StageNameCasing', `Stage name '${written}' should be lowercase`);
        if (asWord !== undefined) {
          const fromLower = kw === kw.toLowerCase();
          const fromUpper = kw === kw.toUpperCase();
          const mismatch = (fromLower && asWord !== asWord.toLowerCase()) || (!fromLower && fromUpper && asWord !== asWord.toUpperCase());
          if (mismatch) warn(n, 'FromAsCasing', `'${asWord}' and '${kw}' keywords' casing do not match`);
        }
        if (ins.stageName) {
          if (reservedStageNames.has(ins.stageName))
            warn(n, 'ReservedStageName', `Stage name should not use the same name as reserved stage "${ins.stageName}"`);
          if (stageNames.has(ins.stageName)) warn(n, 'DuplicateStageName', `Duplicate stage name "${ins.stageName}", stage names should be unique`);
          stageNames.add(ins.stageName);
        }
        break;
      }
      case 'CMD':
      case 'ENTRYPOINT':
      case 'HEALTHCHECK': {
        // With an explicit SHELL the shell form is deliberate, so BuildKit stays quiet.
        if (ins.kind !== 'HEALTHCHECK' && ins.form === 'shell' && ins.args.length > 0 && !shellSet) {
          warn(n, 'JSONArgsRecommended', `JSON arguments recommended for ${ins.kind} to prevent unintended behavior related to OS signals`);
        }
        const prev = once.get(ins.kind);
        if (prev)
          warn(
            prev,
            'MultipleInstructionsDisallowed',
            `Multiple ${ins.kind} instructions should not be used in the same stage because only the last one will be used`,
          );
        once.set(ins.kind, n);
        break;
      }
      case 'SHELL':
        shellSet = true;
        break;
      case 'MAINTAINER':
        warn(n, 'MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label');
        break;
      case 'ENV':
      case 'LABEL':
        if (ins.legacy) warn(n, 'LegacyKeyValueFormat', `"${ins.kind} key=value" should be used instead of legacy "${ins.kind} key value" format`);
        if (ins.kind === 'ENV') for (const p of ins.pairs) secretCheck(n, 'ENV', p.key, warn);
        break;
      case 'ARG':
        for (const a of ins.args) secretCheck(n, 'ARG', a.key, warn);
        break;
      case 'WORKDIR':
        if (!hasWorkdir && !ins.path.startsWith('/') && !ins.path.startsWith('$') && !/^[A-Za-z]:[\\/]/.test(ins.path)) {
          warn(n, 'WorkdirRelativePath', `Relative workdir "${ins.path}" can have unexpected results if the base image changes`);
        }
        hasWorkdir = true;
        break;
      case 'EXPOSE':
        for (const p of ins.ports) {
          if (p.includes('$')) continue; // known only after expansion
          const proto = p.split('/')[1];
          if (proto && proto !== proto.toLowerCase()) warn(n, 'ExposeProtoCasing', `Defined protocol '${p}' in EXPOSE instruction should be lowercase`);
          if (p.includes(':')) warn(n, 'ExposeInvalidFormat', `EXPOSE instruction should not define an IP address or host-port mapping, found '${p}'`);
        }
        break;
    }
  }
}

function secretCheck(n: InstructionNode, kind: string, key: string, warn: Warn): void {
  if (secretWord.test(key) && !allowedWord.test(key)) {
    warn(n, 'SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (${kind} "${key}")`);
  }
}

function lintPlan(plan: Plan, opts: CheckOptions, warn: Warn): void {
  // FROM may only use global ARGs (and the predefined platform args).
  const globals = new Set([...predefinedArgs(hostPlatform(), hostPlatform(), '').keys()]);
  for (const a of plan.metaArgs) for (const d of a.args) globals.add(d.key);
  const scopes: StageScope[] = [];
  for (const stage of plan.stages) {
    const fromNode = stage.from.node;
    for (const word of [stage.from.image, stage.from.platform ?? '']) {
      let unmatched = new Set<string>();
      try {
        unmatched = processWordWithMatches(word, plan.globalArgs, { escapeToken: plan.escapeToken }).unmatched;
      } catch {
        /* reported as an error by buildPlan when the stage is needed */
      }
      for (const name of unmatched) if (!globals.has(name)) warn(fromNode, 'UndefinedArgInFrom', `FROM argument '${name}' is not declared`);
    }
    if (stage.from.platform && /^\$\{?TARGETPLATFORM\}?$/.test(stage.from.platform)) {
      warn(fromNode, 'RedundantTargetPlatform', 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior');
    }
    // Walk the stage as the builder would, to find variables used before they are set.
    const parent = stage.base.type === 'stage' ? scopes[stage.base.index] : undefined;
    const imageEnv = stage.base.type === 'image' ? opts.imageEnv?.(stage.base.ref) : undefined;
    const scope = new StageScope(plan, parent ? { parent } : { imageEnv });
    for (const ins of stage.instructions) {
      try {
        scope.apply(ins);
      } catch {
        /* expansion errors surface when building */
      }
    }
    const seen = new Set<string>();
    for (const u of scope.undefinedVars) {
      const key = `${u.line}:${u.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      warn({ startLine: u.line, column: u.column }, 'UndefinedVar', `Usage of undefined variable '$${u.name}'`);
    }
    scopes[stage.index] = scope;
  }
}
