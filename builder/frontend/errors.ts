/** Where something sits in a Dockerfile: 1-based line and column. */
export interface SourceLocation {
  file: string;
  /** First line of the instruction (1-based). */
  line: number;
  /** Column of the offending text on `line` (1-based). */
  column: number;
  /** Last line the instruction spans (continuations, heredocs). */
  endLine: number;
}

/**
 * A Dockerfile the frontend cannot accept. `message` is one line,
 * `Dockerfile:3:1: unknown instruction: FOO`, so the CLI can print it as is.
 */
export class DockerfileError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The reason without the location prefix. */
  readonly reason: string;

  constructor(reason: string, where: { file: string; line: number; column?: number }) {
    const column = where.column ?? 1;
    super(`${where.file}:${where.line}:${column}: ${oneLine(reason)}`);
    this.name = 'DockerfileError';
    this.file = where.file;
    this.line = where.line;
    this.column = column;
    this.reason = oneLine(reason);
  }
}

/** A problem raised below the location-aware layers (lexer, flags); gets a location on the way up. */
export class FrontendProblem extends Error {
  /** Text to look for on the instruction's first line to compute the column. */
  readonly offending?: string | undefined;
  constructor(message: string, offending?: string) {
    super(message);
    this.name = 'FrontendProblem';
    this.offending = offending;
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Column (1-based) of `needle` in `lineText`, or of the first non-blank character when the needle
 * is absent (e.g. it came from a continuation line).
 */
export function columnOf(lineText: string, needle?: string): number {
  if (needle) {
    const i = lineText.indexOf(needle);
    if (i >= 0) return i + 1;
  }
  const m = /^[\t\v\f\r ]*/.exec(lineText);
  return (m ? m[0].length : 0) + 1;
}
