/**
 * Physical lines of a Dockerfile and the line-continuation rules: the escape token as the last
 * non-blank character continues the instruction on the next line; comment lines and blank lines
 * inside a continuation are skipped.
 */
import { isSpace, trimLeftSpace } from './text.js';

/** Source split into lines that keep their endings (`\n`), like BuildKit's scanner. */
export class LineReader {
  private readonly lines: string[];
  /** Index of the next line to read. */
  private index = 0;

  constructor(text: string) {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) {
        if (start < text.length) lines.push(text.slice(start));
        break;
      }
      lines.push(text.slice(start, nl + 1));
      start = nl + 1;
    }
    this.lines = lines;
  }

  /** The next raw line (with its ending), or undefined at the end. */
  next(): string | undefined {
    return this.index < this.lines.length ? this.lines[this.index++] : undefined;
  }

  /** Number of lines read so far = 1-based number of the last line returned. */
  get lineNumber(): number {
    return this.index;
  }

  /** All lines without endings (for error columns). */
  plainLines(): string[] {
    return this.lines.map(trimNewline);
  }
}

export function trimNewline(s: string): string {
  let end = s.length;
  while (end > 0 && (s[end - 1] === '\n' || s[end - 1] === '\r')) end--;
  return end === s.length ? s : s.slice(0, end);
}

export function isComment(line: string): boolean {
  const t = trimLeftSpace(line);
  return t.length > 0 && t[0] === '#';
}

export function isEmptyContinuationLine(line: string): boolean {
  const t = trimNewline(line);
  for (const c of t) if (!isSpace(c)) return false;
  return true;
}

/** Matches a trailing continuation token (not preceded by the token itself being escaped text). */
export function continuationPattern(escape: string): RegExp {
  const e = '\\' + escape;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

/** Removes a trailing continuation token; `continues` tells whether the instruction goes on. */
export function trimContinuation(line: string, pattern: RegExp): { text: string; continues: boolean } {
  if (pattern.test(line)) return { text: line.replace(pattern, '$1'), continues: true };
  return { text: line, continues: false };
}
