import { familiarReference, parsePlatform } from '../../oci/index.js';
import { pullImage } from '../../registry/client/index.js';
import { type Command, UsageError, stringOption } from '../command.js';
import { openStore } from '../open-store.js';
import { registryClient, registryHelp, registryOptions } from '../registry-flags.js';

export const pullCommand: Command = {
  name: 'pull',
  summary: 'Pull an image from a registry into the local store',
  usage: 'pull [--platform OS/ARCH] [--registry-mirror URL] [--insecure-registry HOST] [-q] REF',
  help: [
    "  --platform OS/ARCH               platform to pick from a multi-platform image (default linux on this machine's architecture)",
    '  -q, --quiet                      print only the image reference',
    registryHelp,
  ].join('\n'),
  options: { ...registryOptions, platform: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError('expected one image reference: tsbuild pull REF');
    const platform = stringOption(ctx, 'platform');
    const store = await openStore(ctx);
    const { client, progress } = registryClient(ctx, ctx.values.quiet === true);
    try {
      const result = await pullImage(client, store, ctx.positionals[0]!, platform ? { platform: parsePlatform(platform) } : {});
      progress?.finish();
      const name = familiarReference(result.reference);
      if (!ctx.values.quiet) {
        ctx.stdout.write(`Digest: ${result.indexDigest ?? result.digest}\n`);
        ctx.stdout.write(`Status: ${result.downloadedBytes > 0 ? 'Downloaded newer image' : 'Image is up to date'} for ${name}\n`);
      }
      ctx.stdout.write(`${name}\n`);
    } finally {
      client.close();
    }
  },
};
