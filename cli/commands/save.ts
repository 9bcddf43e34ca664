import { resolve } from 'node:path';
import { writeImageArchive, type ExportImage } from '../../builder/image/index.js';
import { type Command, stringOption, UsageError } from '../command.js';
import { findImage } from '../image-ref.js';
import { openStore } from '../open-store.js';

export const saveCommand: Command = {
  name: 'save',
  summary: 'Write local images to a tar archive that docker load accepts',
  usage: 'save [-o FILE] REF [REF...]',
  help: '  -o, --output FILE   the archive to write (docker-archive with an OCI layout inside); without it (or -o -)\n                      standard output, as docker save: tsbuild save app:v1 | docker load\n  --format oci        write a plain OCI layout tar instead',
  options: { output: { type: 'string', short: 'o' }, format: { type: 'string' } },
  async run(ctx) {
    const output = stringOption(ctx, 'output') ?? '-';
    if (ctx.positionals.length === 0) throw new UsageError('expected at least one image: tsbuild save [-o FILE] REF [REF...]');
    if (output === '-' && process.stdout.isTTY) throw new UsageError('refusing to write an archive to a terminal: give -o FILE or redirect standard output');
    const format = stringOption(ctx, 'format') ?? 'docker';
    if (format !== 'docker' && format !== 'oci') throw new UsageError(`--format must be docker or oci, not "${format}"`);
    const store = await openStore(ctx);
    const images: ExportImage[] = [];
    for (const input of ctx.positionals) {
      const rec = await findImage(store, input);
      const info = await store.blobs.stat(rec.digest);
      // an image asked for by id or digest carries no name into the archive, as with docker save
      const named = rec.byName ? [input] : [];
      const same = images.find((i) => i.digest === rec.digest);
      if (same) same.names.push(...named);
      else images.push({ digest: rec.digest, mediaType: rec.mediaType, size: info?.size ?? 0, names: named });
    }
    await writeImageArchive(store, images, output === '-' ? '-' : resolve(output), format);
  },
};
