/**
 * The parse tree as BuildKit's dumper prints it: one s-expression per instruction,
 * `(copy ["--from=a"] "src" "/dst")`, strings quoted like Go's strconv.Quote.
 */
import type { DockerfileAST, InstructionNode } from './ast.js';

export function dumpAST(ast: DockerfileAST): string {
  return ast.instructions.map((n) => `(${dumpNode(n)})\n`).join('');
}

export function dumpNode(node: InstructionNode): string {
  let s = node.name;
  if (node.flags.length > 0) s += ` [${node.flags.map(goQuote).join(' ')}]`;
  for (const a of node.args) s += ' ' + goQuote(a);
  if (node.sub) s += ` (${dumpNode(node.sub)})`;
  return s.trim();
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's strconv.Quote: printable runes as is, the rest as \a \b \f \n \r \t \v, \xHH, \uHHHH or \UHHHHHHHH. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') {
      out += '\\' + ch;
      continue;
    }
    if (printable.test(ch)) {
      out += ch;
      continue;
    }
    switch (ch) {
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\\ufffd';
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + '"';
}
