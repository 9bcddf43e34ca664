import { promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { compilePattern } from './glob.js';

interface IgnoreRule {
  pattern: string;
  exclusion: boolean;
  regex: RegExp;
}

/** Cleans a context-relative path the way Go's filepath.Clean does, without a leading `/` or `./`. */
export function cleanRelative(path: string): string {
  const cleaned = posix.normalize('/' + path.replace(/\\/g, '/')).replace(/^\/+/, '').replace(/\/+$/, '');
  return cleaned === '' ? '.' : cleaned;
}

/**
 * .dockerignore with docker's semantics (moby/patternmatcher): patterns are anchored at the context
 * root (a leading `/` is dropped), `**` spans directories, `!` re-includes, the last matching rule
 * wins, and a rule that matches a directory matches everything below it.
 */
export class DockerignoreMatcher {
  private readonly rules: IgnoreRule[];

  constructor(patterns: string[]) {
    this.rules = [];
    for (const raw of patterns) {
      let line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      let exclusion = false;
      if (line.startsWith('!')) {
        exclusion = true;
        line = line.slice(1).trim();
        if (line === '') continue;
      }
      const pattern = cleanRelative(line);
      this.rules.push({ pattern, exclusion, regex: compilePattern(pattern, true) });
    }
  }

  static parse(text: string): DockerignoreMatcher {
    return new DockerignoreMatcher(text.split(/\r?\n/));
  }

  /** Reads `<context>/.dockerignore` (absent means nothing is ignored). */
  static async load(contextDir: string): Promise<DockerignoreMatcher> {
    try {
      return DockerignoreMatcher.parse(await fs.readFile(posix.join(contextDir, '.dockerignore'), 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new DockerignoreMatcher([]);
      throw new Error(`cannot read ${contextDir}/.dockerignore: ${(e as Error).message}`);
    }
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** Whether any `!` rule exists (then an excluded directory must still be walked). */
  get hasExceptions(): boolean {
    return this.rules.some((r) => r.exclusion);
  }

  /** True when the context-relative path is excluded from the context. */
  excludes(relPath: string): boolean {
    const path = cleanRelative(relPath);
    if (path === '.') return false;
    const parents = path.split('/');
    let excluded = false;
    for (const rule of this.rules) {
      if (rule.exclusion === !excluded) continue; // cannot change the verdict
      let match = rule.regex.test(path);
      for (let i = 1; !match && i < parents.length; i++) match = rule.regex.test(parents.slice(0, i).join('/'));
      if (match) excluded = !rule.exclusion;
    }
    return excluded;
  }

  /**
   * True when a directory is excluded and nothing below it can be re-included, so a walk may skip it.
   */
  canSkipDirectory(relDir: string): boolean {
    if (!this.excludes(relDir)) return false;
    const dir = cleanRelative(relDir);
    for (const rule of this.rules) {
      if (!rule.exclusion) continue;
      // An exception that could match something under dir: its literal prefix is compatible with dir.
      const literal = rule.pattern.split(/[*?[\\]/)[0]!;
      if (literal.startsWith(dir + '/') || (dir + '/').startsWith(literal) || literal === '') return false;
    }
    return true;
  }
}
