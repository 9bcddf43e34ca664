import { promises as fs } from 'node:fs';
import { resolve } from 'node:path';
import type { Digest } from '../../oci/index.js';
import { TreeChecksummer } from './checksum.js';
import { cleanRelative, DockerignoreMatcher } from './dockerignore.js';
import { walkTree, type TreeEntry } from './walk.js';

/** The directory a build reads COPY/ADD sources from, seen through its .dockerignore. */
export class BuildContext {
  private readonly checksummer = new TreeChecksummer();

  private constructor(
    readonly dir: string,
    readonly ignore: DockerignoreMatcher,
  ) {}

  /**
   * Opens a context dir. Like BuildKit, a `<Dockerfile>.dockerignore` next to the Dockerfile (e.g.
   * `app.Dockerfile.dockerignore`) takes precedence over the context's `.dockerignore`.
   */
  static async open(dir: string, dockerfile?: string): Promise<BuildContext> {
    const abs = resolve(dir);
    const st = await fs.stat(abs).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`build context ${dir} is not a directory: pass the directory holding your sources`);
    if (dockerfile) {
      const specific = await fs.readFile(`${resolve(dockerfile)}.dockerignore`, 'utf8').catch(() => undefined);
      if (specific !== undefined) return new BuildContext(abs, DockerignoreMatcher.parse(specific));
    }
    return new BuildContext(abs, await DockerignoreMatcher.load(abs));
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
