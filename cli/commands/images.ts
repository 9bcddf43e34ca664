import { familiarReference, parseNormalized, parseReference, formatReference, type Reference } from '../../oci/index.js';
import { resolveImage, type ImageRecord } from '../../store/index.js';
import { type Command, UsageError } from '../command.js';
import { findImage, looksLikeImageId, recordsForId } from '../image-ref.js';
import { openStore } from '../open-store.js';
import { removeImageContent } from '../../store/index.js';
import { formatSize, formatAge, table } from '../format.js';

export const imagesCommand: Command = {
  name: 'images',
  summary: 'List images in the local store',
  usage: 'images [--digests] [--quiet] [--format json]',
  help: '  --digests      show manifest digests\n  -q, --quiet    only image ids\n  --format json  one JSON object per line',
  options: { digests: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' }, format: { type: 'string' } },
  async run(ctx) {
    const store = await openStore(ctx);
    const rows: string[][] = [];
    const json: object[] = [];
    for (const rec of await store.images.list()) {
      const ref = parseReference(rec.name);
      let id = '';
      let size = 0;
      let created = '';
      try {
        const image = await resolveImage(store.blobs, rec.digest);
        id = image.manifest.config.digest;
        size = image.manifest.layers.reduce((n, l) => n + l.size, image.manifest.config.size);
        created = image.config.created ?? '';
      } catch {
        id = '<missing content>';
      }
      const repo = familiarReference({ registry: ref.registry, repository: ref.repository });
      if (ctx.values.quiet) rows.push([id.slice(7, 19)]);
      else if (ctx.values.format === 'json') json.push({ name: rec.name, repository: repo, tag: ref.tag ?? '<none>', digest: rec.digest, id, created, size });
      else rows.push([repo, ref.tag ?? '<none>', ...(ctx.values.digests ? [rec.digest] : []), id.slice(7, 19), created ? formatAge(created) : '', formatSize(size)]);
    }
    if (ctx.values.format === 'json') {
      for (const j of json) ctx.stdout.write(JSON.stringify(j) + '\n');
    } else if (ctx.values.quiet) {
      ctx.stdout.write(rows.map((r) => r[0]).join('\n') + (rows.length ? '\n' : ''));
    } else {
      const header = ['REPOSITORY', 'TAG', ...(ctx.values.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
      ctx.stdout.write(table([header, ...rows]));
    }
  },
};

function one(ctx: { positionals: string[] }, n: number, usage: string): string[] {
  if (ctx.positionals.length !== n) throw new UsageError(`expected ${n} argument${n > 1 ? 's' : ''}: ${usage}`);
  return ctx.positionals;
}

export const tagCommand: Command = {
  name: 'tag',
  summary: 'Give a local image another name',
  usage: 'tag SOURCE TARGET',
  async run(ctx) {
    const [src, dst] = one(ctx, 2, 'tsbuild tag SOURCE TARGET');
    const target: Reference = parseNormalized(dst!);
    if (target.digest) throw new UsageError(`tag target "${dst}" must not contain a digest`);
    const store = await openStore(ctx);
    const rec: ImageRecord = await findImage(store, src!);
    await store.images.set(target, rec.digest, rec.mediaType);
  },
};

export const rmiCommand: Command = {
  name: 'rmi',
  summary: 'Remove image names from the local store',
  usage: 'rmi [-f] REF|ID [REF|ID...]',
  help: '  REF is a name or a manifest digest, ID an image id (full, sha256:…, or short as `images` shows it)\n  -f, --force    remove every name of an image id that has several',
  options: { force: { type: 'boolean', short: 'f' } },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('expected at least one image reference: tsbuild rmi REF [REF...]');
    const store = await openStore(ctx);
    for (const input of ctx.positionals) {
      let names: string[];
      try {
        names = [(await store.images.get(input)).name];
      } catch (e) {
        if (!looksLikeImageId(input)) throw e;
        const records = await recordsForId(store, input);
        if (records.length === 0) throw e;
        names = [...new Set(records.map((r) => r.name))];
        if (names.length > 1 && ctx.values.force !== true) {
          throw new Error(`image ${input} has ${names.length} names (${names.map((n) => familiarReference(parseReference(n))).join(', ')}): remove them by name, or use -f`);
        }
      }
      const digests = new Set<ImageRecord['digest']>();
      for (const name of names) {
        const removed = await store.images.remove(name);
        digests.add(removed.digest);
        ctx.stdout.write(`Untagged: ${familiarReference(parseReference(removed.name))}\n`);
      }
      // docker's rmi: once no name points at the image, its content goes unless something else holds it
      for (const digest of digests) {
        const gone = await removeImageContent(store, digest);
        if (gone.blobs > 0) ctx.stdout.write(`Deleted: ${digest}\n`);
      }
    }
  },
};

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show an image: manifest digest, config and layers (JSON)',
  usage: 'inspect REF|ID',
  async run(ctx) {
    const [input] = one(ctx, 1, 'tsbuild inspect REF');
    const store = await openStore(ctx);
    const rec = await findImage(store, input!);
    const image = await resolveImage(store.blobs, rec.digest);
    const out = {
      Name: rec.name ? formatReference(parseReference(rec.name)) : '',
      Id: image.manifest.config.digest,
      Digest: rec.digest,
      ...(image.indexDigest ? { ManifestDigest: image.manifestDigest } : {}),
      MediaType: image.manifestMediaType,
      Created: image.config.created,
      Architecture: image.config.architecture,
      Os: image.config.os,
      Config: image.config.config ?? {},
      Layers: image.manifest.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
      DiffIDs: image.config.rootfs.diff_ids,
      History: image.config.history ?? [],
      Manifest: image.manifest,
    };
    ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
  },
};
