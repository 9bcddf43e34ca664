/** Instruction flags (`--name=value`, `--bool`, repeatable `--name=v`) checked against what each instruction accepts. */
import { FrontendProblem } from './errors.js';

export type FlagKind = 'string' | 'bool' | 'strings';
export type FlagSpec = Readonly<Record<string, FlagKind>>;

export interface ParsedFlags {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  lists: Map<string, string[]>;
  /** Names given, in order of first use. */
  used: string[];
}

export function parseFlags(flags: readonly string[], spec: FlagSpec, instruction: string): ParsedFlags {
  const out: ParsedFlags = { strings: new Map(), bools: new Map(), lists: new Map(), used: [] };
  for (const a of flags) {
    if (a === '--') break;
    if (!a.startsWith('--')) throw new FrontendProblem(`arg should start with -- : ${a}`, a);
    const eq = a.indexOf('=');
    const flagName = eq < 0 ? a : a.slice(0, eq);
    const value = eq < 0 ? '' : a.slice(eq + 1);
    const hasValue = eq >= 0;
    const name = flagName.slice(2);
    const kind = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
    if (!kind) {
      const allowed = Object.keys(spec);
      const hint = allowed.length ? ` (${instruction} accepts ${allowed.map((f) => '--' + f).join(', ')})` : ` (${instruction} takes no flags)`;
      throw new FrontendProblem(`unknown flag: ${flagName}${hint}`, flagName);
    }
    if (out.used.includes(name) && kind !== 'strings') throw new FrontendProblem(`duplicate flag specified: ${flagName}`, a);
    if (!out.used.includes(name)) out.used.push(name);
    switch (kind) {
      case 'bool': {
        if (hasValue && value === '') throw new FrontendProblem(`missing a value on flag: ${flagName}`, a);
        const v = value.toLowerCase();
        if (v === 'true' || v === '') out.bools.set(name, true);
        else if (v === 'false') out.bools.set(name, false);
        else throw new FrontendProblem(`expecting boolean value for flag ${flagName}, not: ${value}`, a);
        break;
      }
      case 'string':
        if (!hasValue) throw new FrontendProblem(`missing a value on flag: ${flagName}`, a);
        out.strings.set(name, value);
        break;
      case 'strings':
        if (!hasValue) throw new FrontendProblem(`missing a value on flag: ${flagName}`, a);
        out.lists.set(name, [...(out.lists.get(name) ?? []), value]);
        break;
    }
  }
  return out;
}

/** Go's time.ParseDuration → nanoseconds ("1m30s", "500ms", "1.5h"). */
export function parseGoDuration(s: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw new FrontendProblem(`time: invalid duration "${s}"`, s);
  let total = 0;
  while (rest.length > 0) {
    const m = /^(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!m || m[1] === '' || m[1] === '.') {
      throw new FrontendProblem(/^\d*\.?\d*$/.test(rest) ? `time: missing unit in duration "${s}"` : `time: invalid duration "${s}"`, s);
    }
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(sign * total);
}
