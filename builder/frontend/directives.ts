/**
 * Parser directives (`# escape=`, `# syntax=`, `# check=`): comment lines at the very top of the
 * file, before any instruction, blank line or other comment. The first line that is not one ends
 * the directive block; a repeated directive is an error.
 */
import { FrontendProblem } from './errors.js';

export type EscapeToken = '\\' | '`';

export interface Directives {
  escape: EscapeToken;
  /** `# syntax=` as written. Recorded only: a frontend image is never pulled. */
  syntax?: string;
  /** `# check=` as written, e.g. `skip=JSONArgsRecommended;error=true`. */
  check?: string;
  /** Line (1-based) of each directive found. */
  lines: Record<string, number>;
}

const directiveLine = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const known = new Set(['syntax', 'escape', 'check']);

/** Feeds lines one by one (already without line endings and leading blanks). */
export class DirectiveScanner {
  readonly directives: Directives = { escape: '\\', lines: {} };
  private line = 0;
  private done = false;

  /** True when `text` was a directive. Throws on a repeated directive or a bad escape token. */
  feed(text: string): boolean {
    this.line++;
    if (this.done) return false;
    if (!text.startsWith('#')) {
      this.done = true;
      return false;
    }
    const m = directiveLine.exec(text.slice(1).replace(/^\s+/, ''));
    const key = m?.[1]?.toLowerCase();
    if (!m || !key || !known.has(key)) {
      this.done = true;
      return false;
    }
    if (key in this.directives.lines) throw new FrontendProblem(`only one ${key} parser directive can be used`, text);
    this.directives.lines[key] = this.line;
    const value = m[2]!;
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') {
        throw new FrontendProblem(`invalid escape token '${value}' does not match \` or \\`, value);
      }
      this.directives.escape = value;
    } else if (key === 'syntax') this.directives.syntax = value;
    else this.directives.check = value;
    return true;
  }
}

/** `# check=skip=A,B;error=true` → rules to skip (or 'all') and whether warnings fail the check. */
export function parseCheckDirective(value: string | undefined): { skip: Set<string> | 'all'; error: boolean } {
  let skip: Set<string> | 'all' = new Set();
  let error = false;
  for (const part of (value ?? '').split(';')) {
    const [k, v = ''] = part.split('=', 2).map((x) => x.trim()) as [string, string?];
    if (k === 'skip')
      skip =
        v === 'all'
          ? 'all'
          : new Set(
              v
                .split(',')
                .map((x) => x.trim())
                .filter(Boolean),
            );
    else if (k === 'error') error = v.toLowerCase() === 'true';
  }
  return { skip, error };
}
