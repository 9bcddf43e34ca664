import { familiarReference, parseNormalized, parseReference, formatReference, type Reference } from '../../oci/index.js';
import { ImageNotFoundError, resolveImage, type ImageRecord, type Store } from '../../store/index.js';
import { type Command, UsageError, listOption, stringOption } from '../command.js';
import { builtImagesById } from '../../builder/image/index.js';
import { asGoMap, dockerFormat, GoTemplate, renderFormat } from '../go-template.js';
import { findImage, looksLikeImageId, recordsForId } from '../image-ref.js';
import { openStore } from '../open-store.js';
import type { Digest } from '../../oci/index.js';
import { removeImageContent } from '../../store/index.js';
import { formatSize, formatAge } from '../format.js';
import { layerContentSize } from '../layer-size.js';

/** One row of `images`, with the fields docker's `--format` placeholders name. */
interface ImageRow {
  Repository: string;
  Tag: string;
  Digest: string;
  ID: string;
  CreatedSince: string;
  CreatedAt: string;
  Size: string;
  Containers: string;
  SharedSize: string;
  UniqueSize: string;
  VirtualSize: string;
}

const imageHeaders: Record<string, string> = {
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  ID: 'IMAGE ID',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};

/** Go's path.Match for docker's reference filter: `*` and `?` stay within one path component. */
function globMatch(pattern: string, text: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`).test(text);
}

interface ImageFilters {
  dangling?: boolean;
  references: string[];
  labels: Array<[string, string | undefined]>;
}

function parseFilters(specs: string[], positional: string[]): ImageFilters {
  const f: ImageFilters = { references: [...positional], labels: [] };
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const key = eq < 0 ? spec : spec.slice(0, eq);
    const value = eq < 0 ? '' : spec.slice(eq + 1);
    if (key === 'dangling') {
      if (value !== 'true' && value !== 'false' && value !== '1' && value !== '0')
        throw new UsageError(`invalid filter 'dangling=${value}': use dangling=true or dangling=false`);
      f.dangling = value === 'true' || value === '1';
    } else if (key === 'reference') f.references.push(value);
    else if (key === 'label') {
      const e = value.indexOf('=');
      f.labels.push(e < 0 ? [value, undefined] : [value.slice(0, e), value.slice(e + 1)]);
    } else throw new UsageError(`invalid filter '${key}': images takes dangling=, reference= and label=`);
  }
  return f;
}

function referenceMatches(patterns: string[], repository: string, tag: string): boolean {
  if (patterns.length === 0) return true;
  if (repository === '<none>') return false;
  return patterns.some((p) => {
    // docker: a pattern with a tag matches name:tag, one without matches the name
    const withTag = /:[^/]*$/.test(p);
    return globMatch(p, withTag ? `${repository}:${tag}` : repository);
  });
}

export const imagesCommand: Command = {
  name: 'images',
  summary: 'List images in the local store',
  usage: 'images [-a] [--digests] [--no-trunc] [-q] [-f FILTER]... [--format json|TEMPLATE] [REPOSITORY[:TAG]]',
  help: [
    '  --digests            show manifest digests',
    '  --no-trunc           show whole image ids',
    '  -q, --quiet          only image ids',
    '  -f, --filter F       dangling=true|false, reference=PATTERN (busybox, "team/*:v1"), label=KEY[=VALUE] (repeatable)',
    '  --format F           json (one object per line), or a Go template as docker takes it: {{.Repository}}:{{.Tag}},',
    '                       {{.ID}}, {{.Digest}}, {{.CreatedSince}}, {{.CreatedAt}}, {{.Size}}, {{json .}}, "table {{.ID}}\\t…"',
    '  -a, --all            accepted for docker compatibility (there are no intermediate images)',
    '  REPOSITORY[:TAG]     only images of that name (a glob as in docker)',
  ].join('\n'),
  options: {
    digests: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
    format: { type: 'string' },
    filter: { type: 'string', short: 'f', multiple: true },
    'no-trunc': { type: 'boolean' },
    all: { type: 'boolean', short: 'a' },
  },
  async run(ctx) {
    if (ctx.positionals.length > 1) throw new UsageError('expected at most one REPOSITORY[:TAG]: tsbuild images [REPOSITORY[:TAG]]');
    const filters = parseFilters(listOption(ctx, 'filter'), ctx.positionals);
    const formatText = stringOption(ctx, 'format');
    const template = formatText && formatText !== 'json' ? dockerFormat(formatText) : undefined;
    // a template that cannot be evaluated is refused even when there is nothing to list
    if (template) template.template.render(Object.fromEntries(Object.keys(imageHeaders).map((k) => [k, ''])));
    const noTrunc = ctx.values['no-trunc'] === true;
    const store = await openStore(ctx);
    const named = await store.images.list();
    const entries: Array<{ name?: string; digest: Digest }> = named.map((r) => ({ name: r.name, digest: r.digest }));
    // images built without a name (or whose name moved on) are docker's dangling <none>:<none> images
    const namedIds = new Set<string>();
    const resolved = new Map<string, Awaited<ReturnType<typeof resolveImage>> | undefined>();
    const resolveOnce = async (digest: Digest) => {
      if (!resolved.has(digest)) resolved.set(digest, await resolveImage(store.blobs, digest).catch(() => undefined));
      return resolved.get(digest);
    };
    for (const e of entries) {
      const image = await resolveOnce(e.digest);
      if (image) namedIds.add(image.manifest.config.digest);
    }
    const seenDangling = new Set<string>();
    // a store this user may only read has no list of built images for it: named images are still listed
    for (const b of await builtImagesById(store, '').catch(() => [])) {
      if (namedIds.has(b.id) || seenDangling.has(b.id)) continue;
      seenDangling.add(b.id);
      entries.push({ digest: b.digest });
    }
    const rows: ImageRow[] = [];
    const json: object[] = [];
    for (const e of entries) {
      const ref = e.name ? parseReference(e.name) : undefined;
      const image = await resolveOnce(e.digest);
      const id = image ? image.manifest.config.digest : '<missing content>';
      // docker's SIZE: the layers' contents
      const size = image ? (await Promise.all(image.manifest.layers.map((l) => layerContentSize(store, l.digest, l.size)))).reduce((a, b) => a + b, 0) : 0;
      const created = image?.config.created ?? '';
      const repository = ref ? familiarReference({ registry: ref.registry, repository: ref.repository }) : '<none>';
      const tag = ref?.tag ?? '<none>';
      const dangling = !ref;
      if (filters.dangling !== undefined && filters.dangling !== dangling) continue;
      if (!referenceMatches(filters.references, repository, tag)) continue;
      const labels = image?.config.config?.Labels ?? {};
      if (!filters.labels.every(([k, v]) => k in labels && (v === undefined || labels[k] === v))) continue;
      if (formatText === 'json') {
        json.push({ name: e.name ?? '', repository, tag, digest: e.digest, id, created, size });
        continue;
      }
      // keys in the order Go's json prints docker's map: sorted
      rows.push({
        Containers: 'N/A',
        CreatedAt: created ? goTime(created) : '',
        CreatedSince: created ? formatAge(created) : 'N/A',
        Digest: e.digest,
        ID: noTrunc || id.startsWith('<') ? id : id.slice(7, 19),
        Repository: repository,
        SharedSize: 'N/A',
        Size: formatSize(size),
        Tag: tag,
        UniqueSize: 'N/A',
        VirtualSize: formatSize(size),
      });
    }
    if (formatText === 'json') {
      for (const j of json) ctx.stdout.write(JSON.stringify(j) + '\n');
    } else if (ctx.values.quiet) {
      const ids = [...new Set(rows.map((r) => r.ID))];
      ctx.stdout.write(ids.map((i) => i + '\n').join(''));
    } else if (template) {
      ctx.stdout.write(renderFormat(template, rows, imageHeaders));
    } else {
      // docker's default table, through the same writer as a table format
      const digests = ctx.values.digests === true;
      const format = dockerFormat(`table {{.Repository}}\t{{.Tag}}\t${digests ? '{{.Digest}}\t' : ''}{{.ID}}\t{{.CreatedSince}}\t{{.Size}}`);
      ctx.stdout.write(renderFormat(format, rows, imageHeaders));
    }
  },
};

/** Go's time.Time String() as docker prints CreatedAt: `2024-05-01 10:00:00 +0000 UTC`. */
function goTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

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
  summary: 'Remove images from the local store',
  usage: 'rmi [-f] REF|ID [REF|ID...]',
  help: [
    '  REF is a name or a manifest digest, ID an image id (full, sha256:…, or short as `images` shows it);',
    '  an image without a name (built without -t, or whose name moved on: `images -f dangling=true`) goes by its id',
    '  -f, --force    remove every name of an image id that has several',
  ].join('\n'),
  options: { force: { type: 'boolean', short: 'f' } },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('expected at least one image reference: tsbuild rmi REF [REF...]');
    const store = await openStore(ctx);
    for (const input of ctx.positionals) {
      let names: string[] = [];
      // the manifests whose content may go: the named ones untagged here, or an unnamed image's own
      const manifests = new Set<Digest>();
      try {
        names = [(await store.images.get(input)).name];
      } catch (e) {
        if (!(e instanceof ImageNotFoundError) || !looksLikeImageId(input)) throw e;
        const records = await recordsForId(store, input);
        if (records.length === 0) {
          // no name points at it: docker's dangling image, found by its id alone
          manifests.add((await findImage(store, input)).digest);
        }
        names = [...new Set(records.map((r) => r.name))];
        if (names.length > 1 && ctx.values.force !== true) {
          throw new Error(
            `image ${input} has ${names.length} names (${names.map((n) => familiarReference(parseReference(n))).join(', ')}): remove them by name, or use -f`,
          );
        }
      }
      for (const name of names) {
        const removed = await store.images.remove(name);
        manifests.add(removed.digest);
        ctx.stdout.write(`Untagged: ${familiarReference(parseReference(removed.name))}\n`);
      }
      // docker's rmi: once no name points at the image (its id, the config digest), the image goes
      // unless something else holds its content; docker then prints the id, not a manifest digest
      const ids = new Map<Digest, Set<Digest>>();
      for (const digest of manifests) {
        const id = await imageId(store, digest);
        if (!id) continue;
        const group = ids.get(id) ?? new Set<Digest>();
        group.add(digest);
        ids.set(id, group);
      }
      const remaining = await store.images.list();
      for (const [id, digests] of ids) {
        let named = false;
        for (const r of remaining) if (digests.has(r.digest) || (await imageId(store, r.digest)) === id) named = true;
        if (named) continue;
        // the same id may be remembered as built under another manifest (another media type): it goes too
        for (const built of await builtImagesById(store, id.slice(7))) if (built.id === id) digests.add(built.digest);
        for (const digest of digests) await removeImageContent(store, digest);
        ctx.stdout.write(`Deleted: ${id}\n`);
      }
    }
  },
};

/** The image id (config digest) of a stored manifest, or undefined when its content is gone. */
async function imageId(store: Store, digest: Digest): Promise<Digest | undefined> {
  return (await resolveImage(store.blobs, digest).catch(() => undefined))?.manifest.config.digest;
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show images: manifest digest, config and layers (JSON, or --format TEMPLATE)',
  usage: 'inspect [--format TEMPLATE] REF|ID [REF|ID...]',
  help: [
    '  -f, --format T   a Go template as docker takes it: {{.Id}}, {{.Config.Env}}, {{json .Config}}, {{index .RepoTags 0}},',
    '                   {{range .RootFS.Layers}}…{{end}}, {{.Architecture}}, {{.Size}} (one line per image)',
    '  One REF prints one JSON object; several print a JSON array.',
  ].join('\n'),
  options: { format: { type: 'string', short: 'f' }, type: { type: 'string' } },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('expected at least one image: tsbuild inspect REF [REF...]');
    const type = stringOption(ctx, 'type');
    if (type !== undefined && type !== 'image') throw new UsageError(`--type must be image, not "${type}" (tsbuild has only images)`);
    const formatText = stringOption(ctx, 'format');
    const template = formatText !== undefined ? (formatText === 'json' ? new GoTemplate('{{json .}}') : dockerFormat(formatText).template) : undefined;
    const store = await openStore(ctx);
    const records = await store.images.list();
    const outputs: object[] = [];
    const rendered: string[] = [];
    const missing: string[] = [];
    for (const input of ctx.positionals) {
      let rec;
      try {
        rec = await findImage(store, input);
      } catch (e) {
        if (!(e instanceof ImageNotFoundError)) throw e;
        missing.push(input);
        continue;
      }
      const image = await resolveImage(store.blobs, rec.digest);
      const id = image.manifest.config.digest;
      const sameImage: ImageRecord[] = [];
      for (const r of records) {
        if (r.digest === rec.digest) sameImage.push(r);
        else {
          const other = await resolveImage(store.blobs, r.digest).catch(() => undefined);
          if (other?.manifest.config.digest === id) sameImage.push(r);
        }
      }
      const refs = sameImage.map((r) => parseReference(r.name));
      const out = {
        Name: rec.name ? formatReference(parseReference(rec.name)) : '',
        Id: id,
        Digest: rec.digest,
        ...(image.indexDigest ? { ManifestDigest: image.manifestDigest } : {}),
        MediaType: image.manifestMediaType,
        RepoTags: [
          ...new Set(refs.filter((r) => r.tag !== undefined).map((r) => familiarReference({ registry: r.registry, repository: r.repository, tag: r.tag }))),
        ],
        RepoDigests: [
          ...new Set(
            sameImage.map((r) => {
              const ref = parseReference(r.name);
              return familiarReference({ registry: ref.registry, repository: ref.repository, digest: r.digest });
            }),
          ),
        ],
        Created: image.config.created,
        Author: image.config.author ?? '',
        Architecture: image.config.architecture,
        ...(image.config.variant ? { Variant: image.config.variant } : {}),
        Os: image.config.os,
        Size: image.manifest.layers.reduce((n, l) => n + l.size, 0),
        Config: image.config.config ?? {},
        RootFS: { Type: image.config.rootfs.type, Layers: image.config.rootfs.diff_ids },
        Layers: image.manifest.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
        DiffIDs: image.config.rootfs.diff_ids,
        History: image.config.history ?? [],
        Manifest: image.manifest,
      };
      if (template) rendered.push(template.render(templateView(out)) + '\n');
      else outputs.push(out);
    }
    if (template) ctx.stdout.write(rendered.join(''));
    else if (ctx.positionals.length === 1 && outputs.length === 1) ctx.stdout.write(JSON.stringify(outputs[0], null, 2) + '\n');
    else if (outputs.length) ctx.stdout.write(JSON.stringify(outputs, null, 2) + '\n');
    if (missing.length) throw new ImageNotFoundError(missing.join(', '));
  },
};

/** What templates see: docker's ContainerConfig keys present (empty lists and maps where the image has none), labels as a map. */
function templateView(out: { Config: object }): Record<string, unknown> {
  const c = out.Config as Record<string, unknown>;
  const config = {
    Hostname: '',
    Domainname: '',
    User: '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ExposedPorts: asGoMap({}),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: [],
    Cmd: [],
    Image: '',
    Volumes: asGoMap({}),
    WorkingDir: '',
    Entrypoint: [],
    OnBuild: [],
    ...c,
    Labels: asGoMap({ ...((c.Labels as Record<string, string> | undefined) ?? {}) }),
  };
  for (const k of ['ExposedPorts', 'Volumes'] as const) if (c[k]) config[k] = asGoMap({ ...(c[k] as object) });
  return { ...out, Config: config, ContainerConfig: config, Comment: '', Parent: '', DockerVersion: '', Container: '' };
}
