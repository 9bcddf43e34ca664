import { type Command, UsageError } from '../command.js';
import { openStore } from '../open-store.js';
import { registryClient, registryHelp, registryOptions } from '../registry-flags.js';

export const pushCommand: Command = {
  name: 'push',
  summary: 'Push a local image to a registry',
  usage: 'push [--insecure-registry HOST] [-q] REF [DEST...]',
  help: [
    '  REF is a local image name; DEST (default: REF) are the references to push it as. Blobs are sent once',
    '  per repository, skipped when the registry has them and mounted from another repository when possible.',
    '  -q, --quiet                      print only the pushed references',
    registryHelp,
  ].join('\n'),
  options: { ...registryOptions, quiet: { type: 'boolean', short: 'q' } },
  async run(ctx) {
    if (ctx.positionals.length < 1) throw new UsageError('expected an image reference: tsbuild push REF [DEST...]');
    const [source, ...destinations] = ctx.positionals;
    const store = await openStore(ctx);
    const { client, progress } = registryClient(ctx, ctx.values.quiet === true);
    try {
      const result = await client.pushImage(store, source!, destinations.length ? destinations : undefined);
      progress?.finish();
      for (const ref of result.pushed) ctx.stdout.write(ctx.values.quiet ? `${ref}\n` : `${ref}: digest: ${result.digest}\n`);
    } finally {
      client.close();
    }
  },
};
