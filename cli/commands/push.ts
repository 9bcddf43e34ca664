import { isManifestMediaType, layerCompression, parseReference, type Digest } from '../../oci/index.js';
import { compressionReporter } from '../transfer-progress.js';
import { pushImage } from '../../registry/client/index.js';
import { resolveImage, type Store } from '../../store/index.js';
import { withGzipLayers } from '../../builder/image/index.js';
import { type Command, UsageError } from '../command.js';
import { findImage } from '../image-ref.js';
import { openStore } from '../open-store.js';
import { registryClient, registryHelp, registryOptions } from '../registry-flags.js';

export const pushCommand: Command = {
  name: 'push',
  summary: 'Push a local image to a registry',
  usage: 'push [--insecure-registry HOST] [-q] REF|ID [DEST...]',
  help: [
    '  REF is a local image name (or ID an image id, then DEST is needed); DEST (default: REF) are the references',
    '  to push it as. Blobs are sent once',
    '  per repository, skipped when the registry has them and mounted from another repository when possible.',
    '  -q, --quiet                      print only the pushed references',
    registryHelp,
  ].join('\n'),
  options: { ...registryOptions, quiet: { type: 'boolean', short: 'q' } },
  async run(ctx) {
    if (ctx.positionals.length < 1) throw new UsageError('expected an image reference: tsbuild push REF [DEST...]');
    const [input, ...destinations] = ctx.positionals;
    const store = await openStore(ctx);
    const found = await findImage(store, input!);
    if (!found.byName && destinations.length === 0) {
      throw new UsageError(`${input} is an image id or digest, which names no repository: tsbuild push ${input} REGISTRY/NAME:TAG`);
    }
    if (!found.name) throw new Error(`image ${input} has no local name to push from: tsbuild tag ${input} NAME first`);
    // by id or digest: pushed under DEST, read through one of the image's local names
    const source = found.byName ? input! : found.name;
    await compressForTransfer(store, source, ctx.values.quiet === true ? undefined : compressionReporter(ctx.stderr));
    const { client, progress } = registryClient(ctx, ctx.values.quiet === true);
    try {
      const result = await pushImage(client, store, source, destinations.length ? destinations : undefined);
      progress?.finish();
      for (const ref of result.pushed) ctx.stdout.write(ctx.values.quiet ? `${ref}\n` : `${ref}: digest: ${result.digest}\n`);
    } finally {
      client.close();
    }
  },
};

/**
 * Builds keep layers uncompressed in the store; what travels to a registry carries gzip layers, as
 * `build --push` does. The local name then points at the gzip twin (same config, same image id).
 */
async function compressForTransfer(store: Store, source: string, onProgress?: (layer: Digest, done: number, total: number) => void): Promise<void> {
  const record = await store.images.get(source);
  if (!isManifestMediaType(record.mediaType)) return;
  const image = await resolveImage(store.blobs, record.digest);
  if (!image.manifest.layers.some((l) => layerCompression(l.mediaType) === 'none')) return;
  const gzipped = await withGzipLayers(store, record.digest, 6, onProgress);
  await store.images.set(parseReference(record.name), gzipped.digest, gzipped.mediaType);
}
