/** Character classes as Go's `unicode` package defines them, so splitting matches BuildKit's. */

/** Go's unicode.IsSpace. */
export function isSpace(ch: string): boolean {
  switch (ch) {
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case '\u0085':
    case '\u00a0':
    case '\u1680':
    case '\u2028':
    case '\u2029':
    case '\u202f':
    case '\u205f':
    case '\u3000':
      return true;
  }
  return ch >= '\u2000' && ch <= '\u200a';
}

/** Go's strings.TrimSpace. */
export function trimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isSpace(s[a]!)) a++;
  while (b > a && isSpace(s[b - 1]!)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

export function trimLeftSpace(s: string): string {
  let a = 0;
  while (a < s.length && isSpace(s[a]!)) a++;
  return a === 0 ? s : s.slice(a);
}

/** BuildKit's reWhitespace: `[\t\v\f\r ]+`. */
export const whitespaceRun = /[\t\v\f\r ]+/;

/** Go's regexp.Split(s, n) with the whitespace pattern: n = 2 splits once, n < 0 splits everywhere. */
export function splitWhitespace(s: string, n: number): string[] {
  if (n < 0) return s.split(/[\t\v\f\r ]+/);
  const m = whitespaceRun.exec(s);
  if (!m) return [s];
  return [s.slice(0, m.index), s.slice(m.index + m[0].length)];
}

const digit = /^\p{Nd}$/u;
const letter = /^\p{L}$/u;

/** Go's unicode.IsDigit (ASCII answered without a regular expression). */
export function isDigit(ch: string): boolean {
  const c = ch.charCodeAt(0);
  if (c < 0x80) return c >= 0x30 && c <= 0x39;
  return digit.test(ch);
}

/** Go's unicode.IsLetter. */
export function isLetter(ch: string): boolean {
  const c = ch.charCodeAt(0);
  if (c < 0x80) return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  return letter.test(ch);
}
