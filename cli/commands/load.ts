import { resolve } from 'node:path';
import { loadImageArchive } from '../../builder/image/index.js';
import { type Command, stringOption, UsageError } from '../command.js';
import { openStore } from '../open-store.js';

export const loadCommand: Command = {
  name: 'load',
  summary: 'Load images from a docker-archive or OCI layout tar into the local store',
  usage: 'load [-i FILE]',
  help: '  -i, --input FILE   the archive to read (docker save output or an OCI layout tar); without it (or -i -)\n                     standard input, as docker load: docker save busybox | tsbuild load\n  -q, --quiet        print nothing',
  options: { input: { type: 'string', short: 'i' }, quiet: { type: 'boolean', short: 'q' } },
  async run(ctx) {
    if (ctx.positionals.length > (stringOption(ctx, 'input') ? 0 : 1)) throw new UsageError('expected at most one archive: tsbuild load [-i FILE]');
    const input = stringOption(ctx, 'input') ?? ctx.positionals[0] ?? '-';
    if (input === '-' && process.stdin.isTTY) throw new UsageError('no archive: give -i FILE or pipe one in (docker save REF | tsbuild load)');
    const store = await openStore(ctx);
    const loaded = await loadImageArchive(store, input === '-' ? process.stdin : resolve(input));
    if (ctx.values.quiet) return;
    for (const image of loaded) {
      if (image.names.length === 0) ctx.stdout.write(`Loaded image ID: ${image.digest}\n`);
      for (const name of image.names) ctx.stdout.write(`Loaded image: ${name}\n`);
    }
  },
};
