/**
 * Path patterns with Go's filepath.Match syntax (what Dockerfile COPY sources and .dockerignore use):
 * `*` any run of non-separator characters, `?` one non-separator character, `[...]` a class
 * (`[^...]` negated, ranges `a-z`), `\` escapes the next character. `**` (a .dockerignore extension)
 * matches any number of path segments.
 *
 * Written here, not taken from an ignore-file package: those implement .gitignore rules (a pattern without
 * `/` matches at any depth, `[!...]` negates, nothing is re-included under an excluded directory), which
 * answer otherwise than docker's Go matcher for the same file; the context must hold what `docker build` sends.
 */

export class PatternError extends Error {
  constructor(pattern: string, why: string) {
    super(`invalid pattern "${pattern}": ${why}`);
    this.name = 'PatternError';
  }
}

function escapeRegex(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}

/** Compiles a pattern to an anchored regular expression; `doubleStar` enables `**`. */
export function compilePattern(pattern: string, doubleStar = false): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (doubleStar && pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      i++;
      if (i >= pattern.length) throw new PatternError(pattern, 'trailing backslash');
      re += escapeRegex(pattern[i]!);
    } else if (ch === '[') {
      let j = i + 1;
      let cls = '';
      if (pattern[j] === '^') {
        cls += '^';
        j++;
      }
      let closed = false;
      let first = true;
      for (; j < pattern.length; j++) {
        const c = pattern[j]!;
        if (c === ']' && !first) {
          closed = true;
          break;
        }
        first = false;
        if (c === '\\') {
          j++;
          if (j >= pattern.length) break;
          cls += escapeRegex(pattern[j]!);
        } else if (c === '-') {
          cls += '-';
        } else {
          cls += c === '/' ? '' : escapeRegex(c);
        }
      }
      if (!closed) throw new PatternError(pattern, 'unterminated character class');
      // A class never matches the separator, as in Go.
      re += cls.startsWith('^') ? `(?!/)[${cls}]` : `[${cls}]`;
      i = j;
    } else {
      re += escapeRegex(ch);
    }
  }
  return new RegExp(re + '$', 's');
}

/** True when the pattern has any wildcard character (so it may match several paths). */
export function hasWildcards(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

/** Go's filepath.Match on slash-separated paths. */
export function matchPath(pattern: string, path: string): boolean {
  return compilePattern(pattern).test(path);
}
