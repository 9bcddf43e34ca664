import { dumpAST, parseDockerfile } from '../../builder/frontend/index.js';
import { type Command, UsageError, stringOption } from '../command.js';
import { readDockerfile } from './build.js';

const dumpAstCommand: Command = {
  name: 'dump-ast',
  summary: "Print a Dockerfile's parse tree in BuildKit's s-expression format",
  usage: 'debug dump-ast [-f Dockerfile | Dockerfile]',
  help: '  -f, --file PATH   the Dockerfile (default ./Dockerfile; - reads stdin)',
  options: { file: { type: 'string', short: 'f' } },
  async run(ctx) {
    if (ctx.positionals.length > 1) throw new UsageError('expected at most one Dockerfile: tsbuild debug dump-ast [-f Dockerfile]');
    const file = stringOption(ctx, 'file') ?? ctx.positionals[0] ?? 'Dockerfile';
    const text = await readDockerfile(file);
    ctx.stdout.write(dumpAST(parseDockerfile(text, { file: file === '-' ? 'Dockerfile' : file })));
  },
};

export const debugCommand: Command = {
  name: 'debug',
  summary: 'Debugging aids (dump-ast)',
  usage: 'debug SUBCOMMAND',
  subcommands: [dumpAstCommand],
};
