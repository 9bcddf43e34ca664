import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** What every command gets: parsed flags, positionals and the global settings. */
export interface CommandContext {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  /** --root / TSBUILD_ROOT resolved. */
  root: string;
  debug: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** A subcommand: flags in, one call into a module, output. No logic of its own. */
export interface Command {
  name: string;
  /** Other names, e.g. `rmi` for `image rm`. */
  aliases?: string[];
  summary: string;
  /** Usage line(s) after `tsbuild `. */
  usage: string;
  /** Extra help text (flags described). */
  help?: string;
  options?: OptionSpec;
  /** Subcommands (e.g. `debug dump-ast`). */
  subcommands?: Command[];
  run?(ctx: CommandContext): Promise<number | void>;
}

/** A mistake in how the command was called; shown with a pointer to --help. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function stringOption(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function listOption(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}
