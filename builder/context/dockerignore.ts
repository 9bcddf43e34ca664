import { promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { compilePattern } from './glob.js';

interface IgnoreRule {
  pattern: string;
  exclusion: boolean;
  regex: RegExp;
}

/**
 * Per rule, whether it matched a directory or one of its ancestors (patternmatcher's MatchInfo); a walk
 * hands a directory's state to its children so each path is matched once.
 */
export type MatchState = readonly boolean[];

export interface MatchResult {
  excluded: boolean;
  state: MatchState;
}

/** Cleans a context-relative path the way Go's filepath.Clean does, without a leading `/` or `./`. */
export function cleanRelative(path: string): string {
  const cleaned = posix
    .normalize('/' + path.replace(/\\/g, '/'))
    .replace(/^\/+/, '')
    .replace(/\/+$/, '');
  return cleaned === '' ? '.' : cleaned;
}

/** Characters that make an exception a pattern rather than a path (fsutil's patternChars). */
const PATTERN_CHARS = /[*[\]?^\\]/;

/**
 * .dockerignore with BuildKit's semantics (moby/patternmatcher as fsutil's walker applies it): patterns
 * are anchored at the context root (a leading `/` is dropped), `**` spans directories, `!` re-includes,
 * the last matching rule wins, and a rule that matches a directory matches everything below it. A path
 * is matched with MatchesUsingParentResults along its directories, exactly as the walk sees it.
 * Hand-written because no npm package has these rules: gitignore matchers (the `ignore` package) differ
 * on anchoring, on `!` under an excluded directory and on character classes (see glob.ts).
 */
export class DockerignoreMatcher {
  private readonly rules: IgnoreRule[];
  /** Whether a walk may skip an excluded directory when no exception names a path below it. */
  private readonly prefixExceptionsOnly: boolean;
  private readonly patterns: string[];

  constructor(patterns: string[]) {
    this.patterns = patterns;
    this.rules = [];
    for (const raw of patterns) {
      // As moby's ignorefile.ReadAll: `#` starts a comment only at the very start of the line.
      if (raw.startsWith('#')) continue;
      let line = raw.trim();
      if (line === '') continue;
      let exclusion = false;
      if (line.startsWith('!')) {
        exclusion = true;
        line = line.slice(1).trim();
        if (line === '') throw new Error('.dockerignore has an illegal exclusion pattern "!": write the path to re-include after it');
      }
      const pattern = cleanRelative(line);
      this.rules.push({ pattern, exclusion, regex: compilePattern(pattern, true) });
    }
    this.prefixExceptionsOnly = !this.rules.some((r) => r.exclusion && PATTERN_CHARS.test(withoutTrailingGlob(r.pattern)));
  }

  /** The patterns as given (WalkFilter.identity). */
  get identity(): string {
    return this.patterns.join('\n');
  }

  static parse(text: string): DockerignoreMatcher {
    return new DockerignoreMatcher(text.replace(/^\uFEFF/, '').split(/\r?\n/));
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

  /**
   * This matcher with a literal context-relative path (and all below it) left out whatever the rules
   * say: as a last rule, no `!` exception can bring it back. For tsbuild's own state dir (--root) inside
   * the context, which must never be sent, as if .dockerignore'd.
   */
  excluding(relPath: string): DockerignoreMatcher {
    return new DockerignoreMatcher([...this.patterns, cleanRelative(relPath).replace(/[*?[\]\\]/g, '\\$&')]);
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** Whether any `!` rule exists (then an excluded directory may have to be walked). */
  get hasExceptions(): boolean {
    return this.rules.some((r) => r.exclusion);
  }

  /**
   * patternmatcher's MatchesUsingParentResults: `parent` is the state of the path's directory (from the
   * call for that directory); without it, the path is matched along its directories from the root.
   */
  match(relPath: string, parent?: MatchState): MatchResult {
    const path = cleanRelative(relPath);
    if (path === '.' || this.rules.length === 0) return { excluded: false, state: [] };
    if (parent === undefined) {
      const slash = path.lastIndexOf('/');
      if (slash !== -1) parent = this.match(path.slice(0, slash)).state;
    }
    const state = new Array<boolean>(this.rules.length).fill(false);
    let excluded = false;
    for (const [i, rule] of this.rules.entries()) {
      let matched = parent?.[i] ?? false;
      if (!matched) {
        // An inclusion cannot change "excluded", nor an exception "included": such rules are not even
        // evaluated, so their state stays false for the children (patternmatcher's behaviour).
        if (rule.exclusion !== excluded) continue;
        matched = rule.regex.test(path);
      }
      state[i] = matched;
      if (matched) excluded = !rule.exclusion;
    }
    return { excluded, state };
  }

  /** True when the context-relative path is excluded from the context. */
  excludes(relPath: string): boolean {
    return this.match(relPath).excluded;
  }

  /**
   * fsutil's rule for an excluded directory: it is skipped unless an exception has wildcards (anything
   * may match below) or names a path below it.
   */
  canSkipDirectory(relDir: string): boolean {
    if (!this.hasExceptions) return true;
    if (!this.prefixExceptionsOnly) return false;
    const dirSlash = cleanRelative(relDir) + '/';
    return !this.rules.some((r) => r.exclusion && (withoutTrailingGlob(r.pattern) + '/').startsWith(dirSlash));
  }
}

function withoutTrailingGlob(pattern: string): string {
  return pattern.replace(/\/\*\*$/, '').replace(/\/\*$/, '');
}
