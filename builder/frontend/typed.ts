/** Parse-tree node → typed instruction: argument counts, flags, mounts, heredoc sources, durations. */
import type { InstructionNode } from './ast.js';
import { DockerfileError, FrontendProblem, columnOf, type SourceLocation } from './errors.js';
import { parseFlags, parseGoDuration, type FlagSpec, type ParsedFlags } from './flags.js';
import { chompHeredocContent, parseHeredoc } from './heredoc.js';
import type {
  ArgDefinition,
  CommandLine,
  CopyInstruction,
  AddInstruction,
  InlineSource,
  Instruction,
  KeyValue,
  RunCommandLine,
  RunInstruction,
} from './instructions.js';
import { knownInstructions } from './line-parsers.js';
import { parseMount } from './mounts.js';
import { trimSpace } from './text.js';

export interface TypingContext {
  file: string;
  /** Physical source lines, for columns. */
  lines: readonly string[];
}

const flagSpecs: Record<string, FlagSpec> = {
  from: { platform: 'string' },
  run: { mount: 'strings', network: 'string', security: 'string' },
  copy: { chown: 'string', from: 'string', chmod: 'string', link: 'bool', exclude: 'strings', parents: 'bool' },
  add: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', unpack: 'bool', exclude: 'strings' },
  healthcheck: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const validStageName = /^[a-z][a-z0-9-_.]*$/;
const octalMode = /^[0-7]{1,4}$/;
const symbolicMode = /^[ugoa]*[-+=]([rwxXst]*|[ugo])([-+=]([rwxXst]*|[ugo]))*(,[ugoa]*[-+=]([rwxXst]*|[ugo])([-+=]([rwxXst]*|[ugo]))*)*$/;

export function locationOf(node: InstructionNode, ctx: TypingContext, needle?: string): SourceLocation {
  const lineText = ctx.lines[node.startLine - 1] ?? '';
  return { file: ctx.file, line: node.startLine, column: needle ? columnOf(lineText, needle) : node.column, endLine: node.endLine };
}

/** Types one instruction; throws DockerfileError pointing at the offending text. */
export function typeInstruction(node: InstructionNode, ctx: TypingContext): Instruction {
  try {
    return typeNode(node, ctx);
  } catch (e) {
    if (e instanceof DockerfileError) throw e;
    const needle = e instanceof FrontendProblem ? e.offending : undefined;
    const loc = locationOf(node, ctx, needle);
    throw new DockerfileError((e as Error).message, loc);
  }
}

function fail(message: string, offending?: string): never {
  throw new FrontendProblem(message, offending);
}

function commandLine(node: InstructionNode): CommandLine {
  if (node.json) return { form: 'exec', args: node.args.slice() };
  return { form: 'shell', args: node.args.length ? [node.args.join(' ')] : [] };
}

function keyValues(node: InstructionNode, name: string): { pairs: KeyValue[]; legacy: boolean } {
  const a = node.args;
  if (a.length === 0) fail(`${name} requires at least one argument`);
  const pairs: KeyValue[] = [];
  for (let i = 0; i < a.length; i += 3) {
    if (a[i] === '') fail(`${name} names can not be blank`);
    pairs.push({ key: a[i]!, value: a[i + 1] ?? '' });
  }
  return { pairs, legacy: a[2] === '' };
}

function exactlyOne(node: InstructionNode, name: string): string {
  if (node.args.length !== 1) fail(`${name} requires exactly one argument`);
  return node.args[0]!;
}

function noFlags(node: InstructionNode, name: string): void {
  parseFlags(node.flags, {}, name);
}

function checkChmod(flags: ParsedFlags): string | undefined {
  const chmod = flags.strings.get('chmod');
  if (chmod !== undefined && !chmod.includes('$') && !octalMode.test(chmod) && !symbolicMode.test(chmod)) {
    fail(`invalid --chmod=${chmod}: use an octal mode (0755) or a symbolic one (u+x,g-w)`, `--chmod=${chmod}`);
  }
  return chmod;
}

function sourcesAndDest(node: InstructionNode, name: string) {
  if (node.args.length < 2) {
    fail(`${name} requires at least two arguments, but only one was provided. Destination could not be determined`);
  }
  const dest = node.args[node.args.length - 1]!;
  if (parseHeredoc(dest)) fail(`${name} cannot accept a heredoc as a destination`, dest);
  const byName = new Map(node.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const inlineSources: InlineSource[] = [];
  for (const src of node.args.slice(0, -1)) {
    const h = node.json ? undefined : parseHeredoc(src);
    if (h) {
      const doc = byName.get(h.name);
      const content = doc?.content ?? '';
      inlineSources.push({ path: h.name, data: h.chomp ? chompHeredocContent(content) : content, expand: h.expand });
    } else sources.push(src);
  }
  return { sources, inlineSources, dest, json: node.json };
}

interface BaseFields {
  location: SourceLocation;
  original: string;
  keyword: string;
  node: InstructionNode;
}

type Fields<T> = T extends Instruction ? Omit<T, keyof BaseFields> : never;

/** Adds the common fields; plain property writes, because object spread is slow on Node 20's V8. */
function mk<T extends Instruction>(base: BaseFields, fields: Fields<T>): T {
  const o = fields as unknown as T;
  o.location = base.location;
  o.original = base.original;
  o.keyword = base.keyword;
  o.node = base.node;
  return o;
}

function typeNode(node: InstructionNode, ctx: TypingContext): Instruction {
  const base: BaseFields = { location: locationOf(node, ctx), original: node.original, keyword: node.keyword, node };
  const name = node.keyword.toUpperCase();
  switch (node.name) {
    case 'from': {
      const f = parseFlags(node.flags, flagSpecs.from!, name);
      const a = node.args;
      let stageName: string | undefined;
      if (a.length === 3 && a[1]!.toLowerCase() === 'as') {
        stageName = a[2]!.toLowerCase();
        if (!validStageName.test(stageName)) {
          fail(`invalid name for build stage: "${a[2]}", name can't start with a number or contain symbols`, a[2]);
        }
      } else if (a.length !== 1) fail('FROM requires either one or three arguments (FROM image [AS name])');
      return mk(base, { kind: 'FROM', image: a[0]!, stageName, platform: f.strings.get('platform') });
    }
    case 'run': {
      const f = parseFlags(node.flags, flagSpecs.run!, name);
      const network = f.strings.get('network') ?? 'default';
      if (network !== 'default' && network !== 'none' && network !== 'host') {
        fail(`invalid network mode "${network}" (use default, none or host)`, `--network=${network}`);
      }
      const security = f.strings.get('security') ?? 'sandbox';
      if (security !== 'sandbox' && security !== 'insecure') {
        fail(`security mode "${security}" is not supported (use sandbox or insecure)`, `--security=${security}`);
      }
      const mountSpecs = f.lists.get('mount') ?? [];
      const mounts = mountSpecs.map((m) => parseMount(m));
      const c = commandLine(node);
      return mk(base, { kind: 'RUN', form: c.form, args: c.args, mounts, mountSpecs, network, security, heredocs: node.heredocs.slice() });
    }
    case 'cmd':
    case 'entrypoint': {
      noFlags(node, name);
      const c = commandLine(node);
      return node.name === 'cmd' ? mk(base, { kind: 'CMD', form: c.form, args: c.args }) : mk(base, { kind: 'ENTRYPOINT', form: c.form, args: c.args });
    }
    case 'shell': {
      noFlags(node, name);
      if (node.args.length === 0) fail('SHELL requires at least one argument');
      if (!node.json) fail(`SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]`);
      return mk(base, { kind: 'SHELL', shell: node.args.slice() });
    }
    case 'env':
      noFlags(node, name);
      return mk(base, Object.assign(keyValues(node, 'ENV'), { kind: 'ENV' as const }));
    case 'label':
      noFlags(node, name);
      return mk(base, Object.assign(keyValues(node, 'LABEL'), { kind: 'LABEL' as const }));
    case 'maintainer':
      noFlags(node, name);
      return mk(base, { kind: 'MAINTAINER', maintainer: exactlyOne(node, 'MAINTAINER') });
    case 'arg': {
      noFlags(node, name);
      if (node.args.length === 0) fail('ARG requires at least one argument');
      const args: ArgDefinition[] = node.args.map((w) => {
        const eq = w.indexOf('=');
        if (eq < 0) return { key: w };
        if (eq === 0) fail('ARG names can not be blank', w);
        return { key: w.slice(0, eq), value: w.slice(eq + 1) };
      });
      return mk(base, { kind: 'ARG', args });
    }
    case 'copy': {
      const f = parseFlags(node.flags, flagSpecs.copy!, name);
      const from = f.strings.get('from');
      const sd = sourcesAndDest(node, 'COPY');
      return mk<CopyInstruction>(base, {
        kind: 'COPY',
        sources: sd.sources,
        inlineSources: sd.inlineSources,
        dest: sd.dest,
        json: sd.json,
        from,
        chown: f.strings.get('chown'),
        chmod: checkChmod(f),
        link: f.bools.get('link') ?? false,
        excludes: f.lists.get('exclude') ?? [],
        parents: f.bools.get('parents') ?? false,
      });
    }
    case 'add': {
      const f = parseFlags(node.flags, flagSpecs.add!, name);
      const sd = sourcesAndDest(node, 'ADD');
      return mk<AddInstruction>(base, {
        kind: 'ADD',
        sources: sd.sources,
        inlineSources: sd.inlineSources,
        dest: sd.dest,
        json: sd.json,
        chown: f.strings.get('chown'),
        chmod: checkChmod(f),
        link: f.bools.get('link') ?? false,
        excludes: f.lists.get('exclude') ?? [],
        checksum: f.strings.get('checksum'),
        keepGitDir: f.bools.get('keep-git-dir'),
        unpack: f.bools.get('unpack'),
      });
    }
    case 'expose':
      noFlags(node, name);
      if (node.args.length === 0) fail('EXPOSE requires at least one argument');
      return mk(base, { kind: 'EXPOSE', ports: node.args.slice() });
    case 'volume': {
      noFlags(node, name);
      if (node.args.length === 0) fail('VOLUME requires at least one argument');
      const paths = node.args.map(trimSpace);
      if (paths.some((p) => p === '')) fail('VOLUME specified can not be an empty string');
      return mk(base, { kind: 'VOLUME', paths });
    }
    case 'user':
      noFlags(node, name);
      return mk(base, { kind: 'USER', user: exactlyOne(node, 'USER') });
    case 'workdir':
      noFlags(node, name);
      return mk(base, { kind: 'WORKDIR', path: exactlyOne(node, 'WORKDIR') });
    case 'stopsignal':
      noFlags(node, name);
      return mk(base, { kind: 'STOPSIGNAL', signal: exactlyOne(node, 'STOPSIGNAL') });
    case 'healthcheck':
      return typeHealthcheck(node, base, name);
    case 'onbuild': {
      noFlags(node, name);
      if (!node.sub) fail('ONBUILD requires at least one argument');
      const trigger = node.sub.keyword.toUpperCase();
      if (trigger === 'ONBUILD') fail("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", node.sub.keyword);
      if (trigger === 'FROM' || trigger === 'MAINTAINER') fail(`${trigger} isn't allowed as an ONBUILD trigger`, node.sub.keyword);
      let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
      for (const h of node.heredocs) expression += '\n' + h.content + h.name;
      return mk(base, { kind: 'ONBUILD', expression, trigger: typeNode(node.sub, ctx) });
    }
    default: {
      const hint = suggestInstruction(node.name);
      fail(`unknown instruction: ${node.keyword}${hint ? ` (did you mean ${hint}?)` : ''}`, node.keyword);
    }
  }
}

function typeHealthcheck(node: InstructionNode, base: BaseFields, name: string): Instruction {
  if (node.args.length === 0) fail('HEALTHCHECK requires at least one argument (CMD ... or NONE)');
  const typ = node.args[0]!.toUpperCase();
  const rest = node.args.slice(1);
  if (typ === 'NONE') {
    if (rest.length !== 0) fail('HEALTHCHECK NONE takes no arguments');
    if (node.flags.length !== 0) fail('HEALTHCHECK NONE takes no flags', node.flags[0]);
    return mk(base, { kind: 'HEALTHCHECK', test: ['NONE'], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 });
  }
  const f = parseFlags(node.flags, flagSpecs.healthcheck!, name);
  if (typ !== 'CMD') fail(`unknown type "${node.args[0]}" in HEALTHCHECK (try CMD)`, node.args[0]);
  const cmd = node.json ? rest : rest.length ? [rest.join(' ')] : [];
  if (cmd.length === 0) fail('missing command after HEALTHCHECK CMD');
  const interval = (flag: string): number => {
    const v = f.strings.get(flag);
    if (v === undefined || v === '') return 0;
    const ns = parseGoDuration(v);
    if (ns !== 0 && ns < 1e6) fail(`interval "${flag}" cannot be less than 1ms`, `--${flag}`);
    return ns;
  };
  let retries = 0;
  const r = f.strings.get('retries');
  if (r !== undefined && r !== '') {
    if (!/^[+-]?\d+$/.test(r)) fail(`invalid --retries=${r}: expected a whole number`, `--retries`);
    retries = Number(r);
    if (retries < 0) fail(`--retries cannot be negative (${retries})`, '--retries');
  }
  return mk(base, {
    kind: 'HEALTHCHECK',
    test: [node.json ? 'CMD' : 'CMD-SHELL'].concat(cmd),
    interval: interval('interval'),
    timeout: interval('timeout'),
    startPeriod: interval('start-period'),
    startInterval: interval('start-interval'),
    retries,
  });
}

function suggestInstruction(word: string): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  for (const k of knownInstructions) {
    const d = editDistance(word.toLowerCase(), k);
    if (d < bestDist) {
      bestDist = d;
      best = k.toUpperCase();
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

/** What a RUN executes: exec argv, a shell script (heredocs re-attached), or a `#!` file. */
export function runCommandLine(run: RunInstruction): RunCommandLine {
  if (run.form === 'exec') return { kind: 'exec', args: run.args };
  const text = run.args[0] ?? '';
  if (run.heredocs.length === 0) return { kind: 'shell', script: text };
  const single = parseHeredoc(text);
  if (single) {
    const first = run.heredocs[0]!;
    const data = first.chomp ? chompHeredocContent(first.content) : first.content;
    if (data.startsWith('#!')) return { kind: 'file', name: first.name, data };
    return { kind: 'shell', script: data };
  }
  let script = text;
  for (const h of run.heredocs) script += '\n' + h.content + h.name;
  return { kind: 'shell', script };
}
