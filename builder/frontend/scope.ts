/**
 * ARG/ENV scoping and per-step expansion. Which words expand follows BuildKit: ENV, LABEL, ARG
 * defaults, ADD/COPY (sources, dest, --chown, --chmod, --checksum, unquoted heredoc bodies),
 * WORKDIR, USER, VOLUME, STOPSIGNAL, EXPOSE and RUN --mount values. RUN/CMD/ENTRYPOINT/SHELL/
 * HEALTHCHECK/ONBUILD/MAINTAINER keep their text (`$` is for the shell at run time).
 */
import { DockerfileError, FrontendProblem, columnOf } from './errors.js';
import type { Instruction } from './instructions.js';
import { parseMount } from './mounts.js';
import { processWordWithMatches, processWords, type EnvSource } from './shell-lex.js';
import { withDefaultPath } from './stage-defaults.js';

export interface ExpandOptions {
  /** The Dockerfile's escape token (`\` or `` ` ``). */
  escapeToken?: string;
  /** Called with each variable name that was referenced but not set. */
  onUnmatched?: (name: string) => void;
  /** Leave unset variables as written: checks syntax (quotes, `${...}`) without knowing the environment. */
  skipUnsetEnv?: boolean;
}

/** Expands one word with BuildKit's rules (quotes removed, `$VAR` substituted); unset → "". */
export function expandWord(word: string, env: EnvSource, opts: ExpandOptions = {}): string {
  const r = processWordWithMatches(word, env, { escapeToken: opts.escapeToken, skipUnsetEnv: opts.skipUnsetEnv });
  if (opts.onUnmatched) for (const n of r.unmatched) opts.onUnmatched(n);
  return r.result;
}

/** Heredoc bodies: `$VAR` expands, quotes stay literal, the escape is always `\`. */
function expandHeredocBody(data: string, env: EnvSource, opts: ExpandOptions): string {
  const r = processWordWithMatches(data, env, { skipProcessQuotes: true, skipUnsetEnv: opts.skipUnsetEnv });
  if (opts.onUnmatched) for (const n of r.unmatched) opts.onUnmatched(n);
  return r.result;
}

/** A copy of `ins` with some fields replaced (Object.assign: object spread is slow on Node 20's V8). */
function patch<T extends Instruction>(ins: T, fields: Partial<Instruction>): T {
  return Object.assign({}, ins, fields) as T;
}

/**
 * Returns a copy of `ins` with its words expanded against `env` (the environment at this step:
 * base image ENV, then ENV and ARG values of the stage so far). Throws DockerfileError on bad syntax.
 */
export function expandInstruction<T extends Instruction>(ins: T, env: EnvSource, opts: ExpandOptions = {}): T {
  const x = (w: string) => expandWord(w, env, opts);
  const xo = (w: string | undefined) => (w === undefined ? undefined : x(w));
  try {
    switch (ins.kind) {
      case 'ENV':
      case 'LABEL':
        return patch(ins, { pairs: ins.pairs.map((p) => ({ key: x(p.key), value: x(p.value) })) });
      case 'ARG':
        return patch(ins, { args: ins.args.map((a) => ({ key: a.key, value: xo(a.value) })) });
      case 'COPY':
      case 'ADD': {
        const common = {
          sources: ins.sources.map(x),
          dest: x(ins.dest),
          chown: xo(ins.chown),
          chmod: xo(ins.chmod),
          inlineSources: ins.inlineSources.map((s) => (s.expand ? { path: s.path, data: expandHeredocBody(s.data, env, opts), expand: true } : s)),
        };
        if (ins.kind === 'ADD') return patch(ins, Object.assign(common, { checksum: xo(ins.checksum) }));
        return patch(ins, common);
      }
      case 'WORKDIR':
        return patch(ins, { path: x(ins.path) });
      case 'USER':
        return patch(ins, { user: x(ins.user) });
      case 'VOLUME':
        return patch(ins, { paths: ins.paths.map(x) });
      case 'STOPSIGNAL':
        return patch(ins, { signal: x(ins.signal) });
      case 'EXPOSE':
        return patch(ins, { ports: ins.ports.flatMap((p) => processWords(p, env, { escapeToken: opts.escapeToken, skipUnsetEnv: opts.skipUnsetEnv })) });
      case 'RUN':
        // Mount values are checked when typed; with unknown variables there is nothing more to check.
        if (ins.mountSpecs.length === 0 || opts.skipUnsetEnv) return ins;
        return patch(ins, { mounts: ins.mountSpecs.map((m) => parseMount(m, x)) });
      default:
        return ins;
    }
  } catch (e) {
    if (e instanceof DockerfileError) throw e;
    const offending = e instanceof FrontendProblem ? e.offending : undefined;
    const lineText = ins.node.original;
    throw new DockerfileError((e as Error).message, {
      file: ins.location.file,
      line: ins.location.line,
      column:
        offending && lineText.includes(offending) ? ins.location.column + Math.max(0, columnOf(lineText, offending) - columnOf(lineText)) : ins.location.column,
    });
  }
}

/** What a stage scope needs from the plan. */
export interface ScopeSettings {
  escapeToken: string;
  /** Global (meta) ARG values, predefined platform args included. */
  globalArgs: ReadonlyMap<string, string>;
  /** --build-arg values. */
  buildArgs: Readonly<Record<string, string>>;
  /** Proxy build args (HTTP_PROXY...) passed to RUN without an ARG. */
  proxyEnv: Readonly<Record<string, string>>;
}

export interface ScopeStart {
  /** `Env` of the base image config (`KEY=value`), when the stage starts from an image; PATH defaults to DEFAULT_PATH_ENV. */
  imageEnv?: readonly string[] | undefined;
  /** The finished scope of the stage this one is built on (`FROM <stage>`): its ENV and ARGs carry over. */
  parent?: StageScope | undefined;
}

/**
 * The environment of one stage while the builder walks its instructions: call `apply(ins)` for
 * each instruction in order; it returns the instruction expanded against the environment *before*
 * it, then records what ENV and ARG change.
 */
export class StageScope {
  /** Variables visible to expansion and to RUN: image ENV, ENV and ARG values, later wins. */
  readonly env: Map<string, string>;
  /** ENV that goes into the image config (no ARG values). */
  readonly configEnv: Map<string, string>;
  /** ARGs declared in this stage (and its parent stages), with their values (undefined = no value). */
  readonly args: Map<string, string | undefined>;
  /** Variables referenced but not set, per instruction line, for `--check`. */
  readonly undefinedVars: { name: string; line: number; column: number }[] = [];

  constructor(
    private readonly settings: ScopeSettings,
    start: ScopeStart = {},
  ) {
    if (start.parent) {
      this.env = new Map(start.parent.env);
      this.configEnv = new Map(start.parent.configEnv);
      this.args = new Map(start.parent.args);
    } else {
      this.env = new Map();
      this.configEnv = new Map();
      this.args = new Map();
      // Every stage has a PATH, whatever its base says (BuildKit's dispatchStages; docker's too).
      for (const kv of withDefaultPath(start.imageEnv)) {
        const eq = kv.indexOf('=');
        const k = eq < 0 ? kv : kv.slice(0, eq);
        const v = eq < 0 ? '' : kv.slice(eq + 1);
        this.env.set(k, v);
        this.configEnv.set(k, v);
      }
    }
  }

  /** Expands a word against the current environment. */
  expand(word: string): string {
    return expandWord(word, this.env, { escapeToken: this.settings.escapeToken });
  }

  /** Expanded `ins`, with ENV/ARG effects recorded for the following instructions. */
  apply<T extends Instruction>(ins: T): T {
    const missing = new Set<string>();
    let expanded: T;
    if (ins.kind === 'ARG') {
      // Each ARG sees the ones before it on the same line; a --build-arg replaces the default unexpanded.
      const args = ins.args.map((a) => ({ key: a.key, value: this.declareArg(ins, a.key, a.value, missing) }));
      expanded = patch(ins, { args });
    } else {
      expanded = expandInstruction(ins, this.env, { escapeToken: this.settings.escapeToken, onUnmatched: (n) => missing.add(n) });
    }
    if (expanded.kind === 'ENV') {
      for (const p of expanded.pairs) {
        this.env.set(p.key, p.value);
        this.configEnv.set(p.key, p.value);
      }
    }
    for (const n of missing) {
      if (!this.args.has(n)) this.undefinedVars.push({ name: n, line: ins.location.line, column: ins.location.column });
    }
    return expanded;
  }

  private declareArg(ins: Instruction, key: string, def: string | undefined, missing: Set<string>): string | undefined {
    const fromBuild = Object.prototype.hasOwnProperty.call(this.settings.buildArgs, key) ? this.settings.buildArgs[key] : undefined;
    let value: string | undefined;
    if (fromBuild !== undefined) value = fromBuild;
    else if (def !== undefined) {
      value = this.expandReporting(ins, def, missing);
    } else value = this.settings.globalArgs.get(key);
    this.args.set(key, value);
    if (value !== undefined) this.env.set(key, value);
    return value;
  }

  private expandReporting(ins: Instruction, word: string, missing: Set<string>): string {
    try {
      return expandWord(word, this.env, { escapeToken: this.settings.escapeToken, onUnmatched: (n) => missing.add(n) });
    } catch (e) {
      if (e instanceof DockerfileError) throw e;
      throw new DockerfileError((e as Error).message, ins.location);
    }
  }

  /** `KEY=value` list for a RUN process: the stage environment plus proxy build args not already set. */
  runEnvironment(): string[] {
    const out = [...this.env].map(([k, v]) => `${k}=${v}`);
    for (const [k, v] of Object.entries(this.settings.proxyEnv)) if (!this.env.has(k)) out.push(`${k}=${v}`);
    return out;
  }
}
