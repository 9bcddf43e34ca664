import { resolveImage } from '../../store/index.js';
import { type Command, UsageError } from '../command.js';
import { formatAge, formatSize, table } from '../format.js';
import { findImage } from '../image-ref.js';
import { openStore } from '../open-store.js';

/** docker's `history`: an image's steps, newest first, each with the size of the layer it made. */
export const historyCommand: Command = {
  name: 'history',
  summary: 'Show the steps an image was made of',
  usage: 'history [--no-trunc] [-q] [--format json] REF|ID',
  help: '  --no-trunc     show whole commands and ids\n  -q, --quiet    only the image id\n  --format json  one JSON object per step',
  options: { 'no-trunc': { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' }, format: { type: 'string' } },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError('expected one image: tsbuild history REF|ID');
    const format = ctx.values.format;
    if (format !== undefined && format !== 'json') throw new UsageError(`--format must be json, not "${String(format)}"`);
    const store = await openStore(ctx);
    const image = await resolveImage(store.blobs, (await findImage(store, ctx.positionals[0]!)).digest);
    const full = ctx.values['no-trunc'] === true;
    const id = image.manifest.config.digest;
    if (ctx.values.quiet) {
      ctx.stdout.write(`${full ? id : id.slice(7, 19)}\n`);
      return;
    }
    // history entries without empty_layer pair with the layers in order
    let layer = 0;
    const steps = (image.config.history ?? []).map((h) => {
      const size = h.empty_layer ? 0 : (image.manifest.layers[layer++]?.size ?? 0);
      return { created: h.created ?? '', createdBy: h.created_by ?? '', size, comment: h.comment ?? '' };
    });
    steps.reverse();
    if (format === 'json') {
      for (const [i, s] of steps.entries()) ctx.stdout.write(JSON.stringify({ id: i === 0 ? id : '<missing>', ...s }) + '\n');
      return;
    }
    const rows = steps.map((s, i) => [
      i === 0 ? (full ? id : id.slice(7, 19)) : '<missing>',
      s.created ? formatAge(s.created) : '',
      full || s.createdBy.length <= 45 ? s.createdBy : `${s.createdBy.slice(0, 44)}…`,
      formatSize(s.size),
      s.comment,
    ]);
    ctx.stdout.write(table([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...rows]));
  },
};
