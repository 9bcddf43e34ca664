import fs from 'node:fs/promises';
import path from 'node:path';
import { checkDockerfile } from '../../builder/frontend/index.js';
import { type Command, type CommandContext, UsageError, listOption, stringOption } from '../command.js';

/** Everything `tsbuild build` was asked to do, flags parsed; the builder consumes this. */
export interface BuildRequest {
  /** Build context directory. */
  context: string;
  /** Dockerfile path as given (default CONTEXT/Dockerfile); `-` reads standard input. */
  dockerfile: string;
  buildArgs: Record<string, string>;
  target?: string;
  tags: string[];
  check: boolean;
  noCache: boolean;
  pull: boolean;
  push: boolean;
  outputs: string[];
  progress?: string;
  network?: string;
  platform?: string;
  secrets: string[];
  registryMirrors: string[];
  insecureRegistries: string[];
}

export function parseBuildRequest(ctx: CommandContext): BuildRequest {
  if (ctx.positionals.length > 1) throw new UsageError(`expected one build context, got ${ctx.positionals.length}: tsbuild build [FLAGS] CONTEXT`);
  const context = ctx.positionals[0] ?? '.';
  const buildArgs: Record<string, string> = {};
  for (const a of listOption(ctx, 'build-arg')) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new UsageError(`--build-arg "${a}" has no name: use --build-arg NAME=value`);
    if (eq < 0) {
      // `--build-arg NAME` takes the value from the environment, as docker does.
      if (process.env[a] !== undefined) buildArgs[a] = process.env[a]!;
    } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return {
    context,
    dockerfile: stringOption(ctx, 'file') ?? path.join(context, 'Dockerfile'),
    buildArgs,
    target: stringOption(ctx, 'target'),
    tags: listOption(ctx, 'tag'),
    check: ctx.values.check === true,
    noCache: ctx.values['no-cache'] === true,
    pull: ctx.values.pull === true,
    push: ctx.values.push === true,
    outputs: listOption(ctx, 'output'),
    progress: stringOption(ctx, 'progress'),
    network: stringOption(ctx, 'network'),
    platform: stringOption(ctx, 'platform'),
    secrets: listOption(ctx, 'secret'),
    registryMirrors: listOption(ctx, 'registry-mirror'),
    insecureRegistries: listOption(ctx, 'insecure-registry'),
  };
}

export async function readDockerfile(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`cannot read Dockerfile ${file}: no such file (use -f to point at it)`);
    throw new Error(`cannot read Dockerfile ${file}: ${(e as Error).message}`);
  }
}

/** `--check`: lint and evaluate without building; exit 1 when there is anything to report. */
async function runCheck(req: BuildRequest, ctx: CommandContext): Promise<number> {
  const text = await readDockerfile(req.dockerfile);
  const shown = req.dockerfile === '-' ? 'Dockerfile' : path.relative(process.cwd(), req.dockerfile) || req.dockerfile;
  const problems = checkDockerfile(text, { file: shown, buildArgs: req.buildArgs, target: req.target, platform: req.platform });
  if (problems.length === 0) {
    ctx.stdout.write('Check complete, no warnings found.\n');
    return 0;
  }
  for (const p of problems) ctx.stdout.write(`${p.file}:${p.line}: ${p.rule}: ${p.message}\n`);
  const errors = problems.filter((p) => p.severity === 'error').length;
  const warnings = problems.length - errors;
  ctx.stderr.write(`Check complete, ${[errors && `${errors} error${errors > 1 ? 's' : ''}`, warnings && `${warnings} warning${warnings > 1 ? 's' : ''}`].filter(Boolean).join(' and ')} found.\n`);
  return 1;
}

export const buildCommand: Command = {
  name: 'build',
  summary: 'Build an image from a Dockerfile (--check: only evaluate it)',
  usage: 'build [-f Dockerfile] [-t REF]... [--build-arg K=V]... [--target STAGE] [--check] CONTEXT',
  help: [
    '  -f, --file PATH            Dockerfile (default CONTEXT/Dockerfile; - reads stdin)',
    '  --build-arg K=V            set a build argument (repeatable; K alone takes it from the environment)',
    '  --target STAGE             build this stage and only the stages it needs',
    '  --check                    evaluate the Dockerfile and report problems without building',
    '  -t, --tag REF              name the result (repeatable)',
    '  --no-cache, --pull, --push, -o/--output, --progress, --network, --platform, --secret,',
    '  --registry-mirror, --insecure-registry',
  ].join('\n'),
  options: {
    file: { type: 'string', short: 'f' },
    'build-arg': { type: 'string', multiple: true },
    target: { type: 'string' },
    check: { type: 'boolean' },
    tag: { type: 'string', short: 't', multiple: true },
    'no-cache': { type: 'boolean' },
    pull: { type: 'boolean' },
    push: { type: 'boolean' },
    output: { type: 'string', short: 'o', multiple: true },
    progress: { type: 'string' },
    network: { type: 'string' },
    platform: { type: 'string' },
    secret: { type: 'string', multiple: true },
    'registry-mirror': { type: 'string', multiple: true },
    'insecure-registry': { type: 'string', multiple: true },
  },
  async run(ctx) {
    const req = parseBuildRequest(ctx);
    if (req.check) return runCheck(req, ctx);
    throw new Error('building images is not implemented yet');
  },
};
