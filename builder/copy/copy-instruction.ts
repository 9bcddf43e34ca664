import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { posix } from 'node:path';
import type { Digest } from '../../oci/index.js';
import { tempName } from '../../store/index.js';
import { DockerignoreMatcher, type TreeChecksummer } from '../context/index.js';
import { encodeName, fsPath } from '../snapshot/index.js';
import { isTarArchive, extractTarInto } from './archive.js';
import { parseChmod, type ModeChange } from './chmod.js';
import { copyTree, makeParents, writeEntry, type WriteOptions } from './copy-tree.js';
import { fetchUrl, isUrl, type FetchedFile } from './fetch-url.js';
import { resolveChown, type Owner } from './passwd.js';
import { resolveInRoot } from './root-path.js';
import { resolvePathSources, type PathSource, type SourceRoot } from './sources.js';

/** A COPY or ADD with its arguments already expanded. */
export interface CopySpec {
  instruction: 'COPY' | 'ADD';
  /** Source arguments as written; heredoc sources appear by their `<<NAME` placeholder or name. */
  sources: string[];
  /** Heredoc bodies by delimiter name (`COPY <<EOF /x`). */
  heredocs?: { name: string; content: string }[];
  dest: string;
  /** The stage's WORKDIR, for a relative destination. */
  workdir: string;
  chown?: string;
  chmod?: string;
  exclude?: string[];
  parents?: boolean;
  /** --link: copied like a plain COPY (the layer holds the same files). */
  link?: boolean;
  /** ADD --checksum=sha256:... for URL sources. */
  checksum?: string;
}

type Item = PathSource | { kind: 'url'; url: string; fetched: FetchedFile } | { kind: 'heredoc'; name: string; content: string };

/** A COPY/ADD whose sources are resolved (and URLs downloaded): its input checksum and how to apply it. */
export interface PreparedCopy {
  /** Checksum of everything copied (contents, modes, names), for the cache key. */
  inputs: Digest;
  apply(targetRoot: string): Promise<void>;
  dispose(): Promise<void>;
}

function heredocName(src: string): string | undefined {
  const m = /^<<-?["']?([^"']+)["']?$/.exec(src);
  return m ? m[1] : undefined;
}

export async function prepareCopy(
  spec: CopySpec,
  source: SourceRoot,
  scratchDir: string,
  checksummer: TreeChecksummer,
  options: { checksumSources: boolean } = { checksumSources: true },
): Promise<PreparedCopy> {
  const items: Item[] = [];
  const downloads: string[] = [];
  for (const src of spec.sources) {
    const here = heredocName(src);
    const body = here !== undefined ? spec.heredocs?.find((h) => h.name === here) : spec.heredocs?.find((h) => h.name === src);
    if (body) {
      items.push({ kind: 'heredoc', name: body.name, content: body.content });
    } else if (isUrl(src)) {
      if (spec.instruction !== 'ADD') throw new Error(`COPY cannot fetch ${src}: use ADD for URLs`);
      const file = tempName(posix.join(scratchDir, 'add-url'));
      downloads.push(file);
      items.push({ kind: 'url', url: src, fetched: await fetchUrl(src, file, spec.checksum) });
    } else {
      items.push(...(await resolvePathSources(source, src, spec.instruction, spec.parents)));
    }
  }
  const h = createHash('sha256');
  for (const item of items) {
    if (item.kind === 'heredoc') h.update(`heredoc ${item.name} ${createHash('sha256').update(item.content).digest('hex')}\n`);
    else if (item.kind === 'url') h.update(`url ${item.url} ${item.fetched.name} ${item.fetched.digest} ${item.fetched.mtime?.getTime() ?? ''}\n`);
    else {
      h.update(encodeName(`path ${item.written} ${item.parentsPath}\n`));
      if (options.checksumSources) h.update((await checksummer.checksum(source.root, [item.rel], source.filter)) + '\n');
    }
  }
  const inputs = `sha256:${h.digest('hex')}` as Digest;
  return {
    inputs,
    apply: (targetRoot) => applyCopy(spec, source, items, targetRoot),
    dispose: async () => {
      for (const f of downloads) await fs.rm(f, { force: true });
    },
  };
}

function absoluteDest(spec: CopySpec): { path: string; isDir: boolean } {
  const raw = spec.dest;
  const isDir = raw.endsWith('/') || raw === '.' || raw.endsWith('/.') || raw === '..' || raw.endsWith('/..');
  const path = raw.startsWith('/') ? posix.normalize(raw) : posix.join('/', spec.workdir || '/', raw);
  return { path: path.length > 1 ? path.replace(/\/+$/, '') : '/', isDir };
}

/** The first component of a COPY's absolute destination (`app` for `/app/files/`), or undefined for `/`. */
export function destinationTop(spec: CopySpec): string | undefined {
  return absoluteDest(spec).path.split('/')[1] || undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  return fs.stat(fsPath(path)).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function applyCopy(spec: CopySpec, source: SourceRoot, items: Item[], targetRoot: string): Promise<void> {
  const dest = absoluteDest(spec);
  const count = items.length;
  if (count > 1 && !dest.isDir && !spec.parents) {
    throw new Error(`${spec.instruction} with more than one source file needs a destination directory ending in "/" (got "${spec.dest}")`);
  }
  const owner: Owner | undefined = spec.chown ? await resolveChown(targetRoot, spec.chown) : source.preserveOwnership ? undefined : { uid: 0, gid: 0 };
  const fileOwner: Owner = owner ?? { uid: 0, gid: 0 };
  const mode: ModeChange | undefined = spec.chmod ? parseChmod(spec.chmod) : undefined;
  const exclude = spec.exclude?.length ? new DockerignoreMatcher(spec.exclude) : undefined;
  const opts: WriteOptions = { ...(owner ? { owner } : {}), ...(mode ? { mode } : {}), hardlinks: new Map() };
  const destHost = await resolveInRoot(targetRoot, dest.path);
  const destIsExistingDir = await isDirectory(destHost);

  /** Where a single file named `name` lands. */
  const fileTarget = async (name: string, parentsPath?: string): Promise<string> => {
    if (spec.parents && parentsPath !== undefined) return resolveInRoot(targetRoot, posix.join(dest.path, parentsPath));
    if (dest.isDir || destIsExistingDir || count > 1) return resolveInRoot(targetRoot, posix.join(dest.path, name));
    return destHost;
  };

  for (const item of items) {
    if (item.kind === 'heredoc' || item.kind === 'url') {
      const name = item.kind === 'heredoc' ? item.name : item.fetched.name;
      const target = await fileTarget(name);
      await makeParents(posix.dirname(target), owner);
      await fs.rm(fsPath(target), { recursive: true, force: true });
      if (item.kind === 'heredoc') await fs.writeFile(fsPath(target), item.content);
      else await fs.copyFile(item.fetched.path, fsPath(target));
      const base = item.kind === 'heredoc' ? 0o664 : 0o600;
      await fs.chmod(fsPath(target), mode ? mode(base, false) : base);
      await fs.lchown(fsPath(target), fileOwner.uid, fileOwner.gid);
      if (item.kind === 'url' && item.fetched.mtime) await fs.utimes(fsPath(target), item.fetched.mtime, item.fetched.mtime);
      continue;
    }
    if (exclude && (exclude.excludes(item.written) || exclude.excludes(item.parentsPath))) continue;
    const excludeRel = exclude ? (rel: string) => exclude.excludes(rel) || exclude.excludes(posix.join(item.written, rel)) : undefined;
    if (item.stat.isDirectory()) {
      const target = spec.parents ? await resolveInRoot(targetRoot, posix.join(dest.path, item.parentsPath)) : destHost;
      await makeParents(posix.dirname(target), owner);
      await copyTree(source.root, item.rel, target, opts, source.filter, excludeRel);
      continue;
    }
    const srcHost = item.rel === '.' ? source.root : posix.join(source.root, item.rel);
    if (spec.instruction === 'ADD' && !source.preserveOwnership && (await isTarArchive(srcHost))) {
      await makeParents(destHost, owner);
      await extractTarInto(srcHost, destHost);
      continue;
    }
    const target = await fileTarget(posix.basename(item.written), item.parentsPath);
    await makeParents(posix.dirname(target), owner);
    await writeEntry(srcHost, item.stat, target, opts);
  }
}
