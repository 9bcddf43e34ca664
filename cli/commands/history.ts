import { resolveImage } from '../../store/index.js';
import { type Command, UsageError } from '../command.js';
import { formatAge, formatSize } from '../format.js';
import { findImage } from '../image-ref.js';
import { openStore } from '../open-store.js';
import { dockerFormat, renderFormat } from '../go-template.js';
import { layerContentSize } from '../layer-size.js';

const historyHeaders: Record<string, string> = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  Size: 'SIZE',
  Comment: 'COMMENT',
};

/** docker's `history`: an image's steps, newest first, each with the size of the layer it made. */
export const historyCommand: Command = {
  name: 'history',
  summary: 'Show the steps an image was made of',
  usage: 'history [--no-trunc] [-q] [--format json|TEMPLATE] REF|ID',
  help: '  --no-trunc     show whole commands and ids\n  -q, --quiet    only the image id\n  --format F     json (one JSON object per step) or a Go template: {{.ID}}, {{.CreatedBy}}, {{.Size}}, {{.CreatedSince}}, {{.Comment}}, table …',
  options: { 'no-trunc': { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' }, format: { type: 'string' } },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError('expected one image: tsbuild history REF|ID');
    const format = ctx.values.format;
    const template =
      typeof format === 'string' && format !== 'json'
        ? dockerFormat(format)
        : format === undefined
          ? dockerFormat('table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}')
          : undefined;
    // a template that cannot be evaluated is refused before anything is read
    if (template) template.template.render(Object.fromEntries(Object.keys(historyHeaders).map((k) => [k, ''])));
    const store = await openStore(ctx);
    const image = await resolveImage(store.blobs, (await findImage(store, ctx.positionals[0]!)).digest);
    const full = ctx.values['no-trunc'] === true;
    const id = image.manifest.config.digest;
    if (ctx.values.quiet) {
      ctx.stdout.write(`${full ? id : id.slice(7, 19)}\n`);
      return;
    }
    // history entries without empty_layer pair with the layers in order; docker's SIZE is the bytes of the
    // files a layer holds (its tar entries), not of the tar or its compression
    const sizes = await Promise.all(image.manifest.layers.map((l) => layerContentSize(store, l.digest, l.size)));
    let layer = 0;
    const steps = (image.config.history ?? []).map((h) => {
      const size = h.empty_layer ? 0 : (sizes[layer++] ?? 0);
      return { created: h.created ?? '', createdBy: h.created_by ?? '', size, comment: h.comment ?? '' };
    });
    steps.reverse();
    if (template) {
      const rows = steps.map((s, i) => ({
        Comment: s.comment,
        CreatedAt: s.created,
        CreatedBy: full || s.createdBy.length <= 45 ? s.createdBy : `${s.createdBy.slice(0, 44)}…`,
        CreatedSince: s.created ? formatAge(s.created) : '',
        ID: i === 0 ? (full ? id : id.slice(7, 19)) : '<missing>',
        Size: formatSize(s.size),
      }));
      ctx.stdout.write(renderFormat(template, rows, historyHeaders));
      return;
    }
    if (format === 'json') {
      for (const [i, s] of steps.entries()) ctx.stdout.write(JSON.stringify({ id: i === 0 ? id : '<missing>', ...s }) + '\n');
      return;
    }
  },
};
