import { createInterface } from 'node:readline';
import { login, dockerConfigFile } from '../../registry/client/index.js';
import { type Command, type CommandContext, UsageError, stringOption } from '../command.js';
import { registrySettings, registryOptions } from '../registry-flags.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

async function prompt(question: string, hidden: boolean): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (hidden) {
    const rlAny = rl as unknown as { _writeToOutput: (s: string) => void };
    rlAny._writeToOutput = (s: string) => {
      if (s.startsWith(question)) process.stderr.write(question);
    };
  }
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    if (hidden) process.stderr.write('\n');
    rl.close();
  }
}

async function credentials(ctx: CommandContext): Promise<{ username: string; password: string }> {
  let username = stringOption(ctx, 'username');
  let password = stringOption(ctx, 'password');
  if (ctx.values['password-stdin']) {
    if (password !== undefined) throw new UsageError('--password and --password-stdin cannot be used together');
    if (username === undefined) throw new UsageError('--password-stdin needs --username (-u)');
    password = (await readAll(process.stdin)).replace(/\r?\n$/, '');
  } else if (password !== undefined) {
    ctx.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  }
  if (username === undefined) {
    if (!process.stdin.isTTY) throw new UsageError('no user name given: pass -u USER (and --password-stdin)');
    username = await prompt('Username: ', false);
  }
  if (password === undefined) {
    if (!process.stdin.isTTY) throw new UsageError('no password given: pass --password-stdin and write it to standard input');
    password = await prompt('Password: ', true);
  }
  if (!username) throw new UsageError('the user name must not be empty');
  return { username, password };
}

export const loginCommand: Command = {
  name: 'login',
  summary: "Log in to a registry (saved in docker's config.json)",
  usage: 'login [-u USER] [-p PASS | --password-stdin] [HOST]',
  help: [
    '  HOST defaults to docker.io. The login is checked against the registry, then stored in',
    '  $DOCKER_CONFIG/config.json (default ~/.docker/config.json) the way docker stores it,',
    '  through the configured credential helper (credsStore/credHelpers) when there is one.',
    '  -u, --username USER',
    '  -p, --password PASS   (visible in the process list; prefer --password-stdin)',
    '  --password-stdin      read the password from standard input',
  ].join('\n'),
  options: { ...registryOptions, username: { type: 'string', short: 'u' }, password: { type: 'string', short: 'p' }, 'password-stdin': { type: 'boolean' } },
  async run(ctx) {
    if (ctx.positionals.length > 1) throw new UsageError('expected at most one registry host: tsbuild login [-u USER] [--password-stdin] HOST');
    const host = ctx.positionals[0] ?? 'docker.io';
    const creds = await credentials(ctx);
    await login(host, creds, { settings: registrySettings(ctx) });
    ctx.stdout.write(`Login Succeeded (saved in ${dockerConfigFile()})\n`);
  },
};
