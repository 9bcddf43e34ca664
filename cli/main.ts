#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { allCommands, findCommand } from './commands/index.js';
import { type Command, type CommandContext, UsageError } from './command.js';
import { defaultRoot } from '../config/paths.js';
import { version } from './version.js';

const globalOptions = {
  root: { type: 'string' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function topHelp(): Promise<string> {
  const commands = await allCommands();
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: tsbuild [--root DIR] [--debug] COMMAND [ARGS]',
    '       tsbuild -t REF [BUILD FLAGS] CONTEXT   (same as tsbuild build)',
    '',
    'Daemonless image builder, OCI registry and registry mirror.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global flags:',
    '  --root DIR   state directory (env TSBUILD_ROOT; default $XDG_DATA_HOME/tsbuild, /var/lib/tsbuild as root)',
    '  --debug      print stack traces with errors',
    '  --version    print the version',
    '',
    "Run 'tsbuild COMMAND --help' for a command's flags.",
  ].join('\n');
}

function commandHelp(cmd: Command): string {
  const lines = [`Usage: tsbuild ${cmd.usage}`, '', cmd.summary];
  if (cmd.subcommands?.length) {
    lines.push('', 'Subcommands:', ...cmd.subcommands.map((s) => `  ${s.name.padEnd(14)} ${s.summary}`));
  }
  if (cmd.help) lines.push('', cmd.help.trimEnd());
  lines.push('', `Global flags (--root DIR, --debug) are accepted too. See 'tsbuild --help'.`);
  return lines.join('\n');
}

/** node:util parseArgs's complaint in tsbuild's words: `unknown flag --foo`, `flag --tag needs a value`. */
function flagProblem(e: Error & { code?: string }): string {
  const text = e.message;
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown flag ${/'([^']+)'/.exec(text)?.[1] ?? ''}`.trimEnd();
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const names = /^Option '([^']+)'/.exec(text)?.[1]?.replace(/ <value>$/, '') ?? '';
    const flag = names.split(', ').pop() ?? names;
    return text.includes('argument missing') ? `flag ${flag} needs a value` : `flag ${flag} takes no value`;
  }
  return text.split('\n')[0]!;
}

/** Splits argv into global flags and the rest; globals may stand anywhere before the command. */
function takeGlobals(argv: string[]): { root?: string | undefined; debug: boolean; rest: string[] } {
  const rest: string[] = [];
  let root: string | undefined;
  let debug = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--debug') debug = true;
    else if (a === '--root') root = argv[++i];
    else if (a.startsWith('--root=')) root = a.slice(7);
    else rest.push(a);
  }
  return { root, debug, rest };
}

export async function main(argv: string[]): Promise<number> {
  const { root, debug, rest } = takeGlobals(argv);
  // stack traces name the TypeScript sources (the bundle's maps; modules loaded from here on)
  if (debug) process.setSourceMapsEnabled(true);
  try {
    if (rest.length === 0 || rest[0] === '--help' || rest[0] === '-h' || rest[0] === 'help') {
      if (rest[0] === 'help' && rest[1]) {
        const c = await findCommand(rest[1]);
        if (!c) throw new UsageError(`unknown command "${rest[1]}"`);
        process.stdout.write(commandHelp(c) + '\n');
        return 0;
      }
      process.stdout.write((await topHelp()) + '\n');
      return 0;
    }
    if (rest[0] === '--version' || rest[0] === '-v' || rest[0] === 'version') {
      process.stdout.write(`tsbuild ${version}\n`);
      return 0;
    }
    let args = rest;
    let cmd: Command | undefined;
    if (args[0]!.startsWith('-')) {
      // `tsbuild -t app:v1 .` is `tsbuild build -t app:v1 .`, as the mission promises.
      cmd = await findCommand('build');
    } else {
      cmd = await findCommand(args[0]!);
      if (!cmd) throw new UsageError(`unknown command "${args[0]}"`);
      args = args.slice(1);
    }
    if (!cmd) throw new UsageError('no build command available');
    const configFile = process.env.TSBUILD_CONFIG;
    if (configFile && !existsSync(configFile)) {
      throw new UsageError(
        `TSBUILD_CONFIG names ${configFile}, which does not exist: create it, unset TSBUILD_CONFIG, or set it to /dev/null for no config file`,
      );
    }
    let path = cmd.name;
    while (cmd.subcommands?.length && args[0] && !args[0].startsWith('-')) {
      const sub: Command | undefined = cmd.subcommands.find((s) => s.name === args[0] || s.aliases?.includes(args[0]!));
      if (!sub) throw new UsageError(`unknown subcommand "${args[0]}" for "${path}"`);
      cmd = sub;
      path += ` ${sub.name}`;
      args = args.slice(1);
    }
    const askedHelp = args.includes('--help') || args.includes('-h');
    if (askedHelp || !cmd.run) {
      process.stdout.write(commandHelp(cmd) + '\n');
      // help asked for is an answer; a command group named without a subcommand is a usage error
      return askedHelp ? 0 : 2;
    }
    let parsed;
    try {
      parsed = parseArgs({ args, options: { ...cmd.options, help: globalOptions.help }, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError(`${flagProblem(e as Error & { code?: string })} for "tsbuild ${path}" (see 'tsbuild ${path} --help')`);
    }
    const ctx: CommandContext = {
      values: parsed.values as CommandContext['values'],
      positionals: parsed.positionals,
      // absolute once: overlay mounts run with a cwd of their own and read relative paths against it
      root: resolve(root ?? process.env.TSBUILD_ROOT ?? defaultRoot()),
      debug,
      stdout: process.stdout,
      stderr: process.stderr,
    };
    const code = await cmd.run(ctx);
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    const err = e as Error;
    const message = (err?.message ?? String(e)).split('\n')[0];
    process.stderr.write(`tsbuild: ${message}\n`);
    if (debug && err?.stack) process.stderr.write(err.stack + '\n');
    return err instanceof UsageError ? 2 : 1;
  }
}

// A reader that went away (`tsbuild images | head -1`) ends the command as a broken pipe ends docker
// (SIGPIPE; a shell shows status 141), without an unhandled 'error' event and its stack trace.
for (const out of [process.stdout, process.stderr]) {
  out.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(141);
    throw e;
  });
}

process.on('unhandledRejection', (e) => {
  process.stderr.write(`tsbuild: ${(e as Error)?.message ?? String(e)}\n`);
  process.exit(1);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
