/** Finding here-document words on an instruction line (`<<EOF`, `<<-EOF`, `<<'EOF'`, `3<<EOF`). */
import type { Heredoc } from './ast.js';
import { processWords } from './shell-lex.js';

const heredocWord = /^(\d*)<<(-?)\s*([^<]*)$/;

/** The heredoc a single word introduces, or undefined when the word is not one. */
export function parseHeredoc(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = heredocWord.exec(word);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest.length === 0) return undefined;
  const plain = processWords(rest, {}, { skipUnsetEnv: true });
  if (plain.length !== 1) return undefined;
  const raw = processWords(rest, {}, { skipUnsetEnv: true, rawQuotes: true });
  if (raw.length !== plain.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const name = plain[0]!;
  // A quote anywhere in the delimiter turns expansion of the body off, as in a shell.
  const expand = countQuotes(name) === countQuotes(raw[0]!);
  return { name, fileDescriptor: m[1] ? Number(m[1]) : 0, expand, chomp: m[2] === '-' };
}

export function heredocsFromLine(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = processWords(line, {}, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  } catch {
    return [];
  }
  const docs: Omit<Heredoc, 'content'>[] = [];
  for (const w of words) {
    const h = parseHeredoc(w);
    if (h) docs.push(h);
  }
  return docs;
}

/** `<<-` bodies: leading tabs removed from every line. */
export function chompHeredocContent(content: string): string {
  return content.replace(/^\t+/gm, '');
}

function countQuotes(s: string): number {
  let n = 0;
  for (const c of s) if (c === '"' || c === "'") n++;
  return n;
}
