/**
 * Shell wildcard patterns of `${VAR#p}`, `${VAR%p}`, `${VAR/p/r}`: `*` and `?` with escapes, no
 * bracket expressions, converted to regular expressions as BuildKit does.
 */
import { FrontendProblem } from './errors.js';

/** Shell wildcard pattern (`*`, `?`, escapes; no brackets) → RegExp, as BuildKit converts it. */
export function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i]!;
    switch (tok) {
      case '*':
        out += greedy ? '.*' : '.*?';
        continue;
      case '?':
        out += '.';
        continue;
      case '\\': {
        const nx = chars[i + 1];
        if (nx === '}' || nx === '/') continue;
        out += '\\';
        tok = chars[++i] ?? '';
        if (tok !== '*' && tok !== '?' && tok !== '\\') {
          throw new FrontendProblem(`invalid pattern (${pattern}) in substitution: invalid escape '\\${tok}'`);
        }
        break;
      }
      case '[':
      case ']':
      case '{':
      case '}':
      case '.':
      case '+':
      case '(':
      case ')':
      case '|':
      case '^':
      case '$':
        out += '\\';
        break;
    }
    out += tok;
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

export function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

/** Reverses a pattern but keeps each escape before the character it escapes. */
function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last; ) {
    const o = last - i;
    if (p[i] === '\\' && i !== last) {
      out[o - 1] = '\\';
      out[o] = p[i + 1]!;
      i += 2;
    } else {
      out[o] = p[i]!;
      i++;
    }
  }
  return out.join('');
}

function reverse(s: string): string {
  return Array.from(s).reverse().join('');
}

export function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}
