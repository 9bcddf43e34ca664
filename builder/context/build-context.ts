import { promises as fs } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Digest } from '../../oci/index.js';
import { TreeChecksummer } from './checksum.js';
import { cleanRelative, DockerignoreMatcher } from './dockerignore.js';
import { walkTree, type TreeEntry } from './walk.js';

/** The directory a build reads COPY/ADD sources from, seen through its .dockerignore. */
/** The context-relative paths of those of `dirs` that lie inside the context `contextDir` (symlinks resolved). */
async function inside(contextDir: string, dirs: string[]): Promise<string[]> {
  if (dirs.length === 0) return [];
  const real = await fs.realpath(contextDir);
  const out: string[] = [];
  for (const dir of dirs) {
    const rel = relative(real, await fs.realpath(dir).catch(() => resolve(dir)));
    if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)) out.push(rel.split(sep).join('/'));
  }
  return out;
}

export class BuildContext {
  private readonly checksummer = new TreeChecksummer();

  private constructor(
    readonly dir: string,
    readonly ignore: DockerignoreMatcher,
    /** Context-relative paths of the `leaveOut` dirs inside it (a bind mount of the context hides them). */
    readonly leftOut: string[] = [],
  ) {}

  /**
   * Opens a context dir. Like BuildKit, a `<Dockerfile>.dockerignore` next to the Dockerfile (e.g.
   * `app.Dockerfile.dockerignore`) takes precedence over the context's `.dockerignore`. `leaveOut`: dirs
   * never part of the context wherever they are (tsbuild's state root: its overlay mounts live there).
   */
  static async open(dir: string, dockerfile?: string, options: { leaveOut?: string[] } = {}): Promise<BuildContext> {
    const abs = resolve(dir);
    const st = await fs.stat(abs).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`build context ${dir} is not a directory: pass the directory holding your sources`);
    let ignore: DockerignoreMatcher | undefined;
    if (dockerfile) {
      const specific = await fs.readFile(`${resolve(dockerfile)}.dockerignore`, 'utf8').catch(() => undefined);
      if (specific !== undefined) ignore = DockerignoreMatcher.parse(specific);
    }
    ignore ??= await DockerignoreMatcher.load(abs);
    const leftOut = await inside(abs, options.leaveOut ?? []);
    for (const rel of leftOut) ignore = ignore.excluding(rel);
    return new BuildContext(abs, ignore, leftOut);
  }

  /** Whether a context-relative path is part of the context. */
  includes(rel: string): boolean {
    return !this.ignore.excludes(rel);
  }

  /** Entries at and below a context-relative path that the .dockerignore lets through. */
  walk(rel = '.'): AsyncGenerator<TreeEntry> {
    return walkTree(this.dir, cleanRelative(rel), this.ignore);
  }

  /** A stable content checksum of the given context-relative paths (for cache keys). */
  checksum(rels: string[]): Promise<Digest> {
    return this.checksummer.checksum(this.dir, rels.map(cleanRelative), this.ignore);
  }
}
