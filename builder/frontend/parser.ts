/** Dockerfile text → parse tree (InstructionNode per instruction), BuildKit's parser rules. */
import type { DockerfileAST, Heredoc, InstructionNode, ParseWarning } from './ast.js';
import { DirectiveScanner } from './directives.js';
import { DockerfileError, FrontendProblem, columnOf } from './errors.js';
import { heredocsFromLine } from './heredoc.js';
import { parseArgsFor, splitCommand } from './line-parsers.js';
import { LineReader, continuationPattern, isComment, isEmptyContinuationLine, trimContinuation, trimNewline } from './scanner.js';
import { trimLeftSpace, trimSpace } from './text.js';

export interface ParseOptions {
  /** Name used in messages (`Dockerfile:3:1: ...`); default `Dockerfile`. */
  file?: string | undefined;
}

const heredocInstructions = new Set(['add', 'copy', 'run']);

export function parseDockerfile(text: string, opts: ParseOptions = {}): DockerfileAST {
  const file = opts.file ?? 'Dockerfile';
  const reader = new LineReader(text);
  const sourceLines = reader.plainLines();
  const directives = new DirectiveScanner();
  let continuation = continuationPattern('\\');
  const instructions: InstructionNode[] = [];
  const warnings: ParseWarning[] = [];
  let comments: string[] = [];

  const fail = (e: unknown, line: number, fallbackNeedle?: string): never => {
    if (e instanceof DockerfileError) throw e;
    const problem = e as Error;
    const needle = e instanceof FrontendProblem ? (e.offending ?? fallbackNeedle) : fallbackNeedle;
    throw new DockerfileError(problem.message, { file, line, column: columnOf(sourceLines[line - 1] ?? '', needle) });
  };

  /** processLine: strip the newline (and leading blanks on a first line), note directives, drop comments. */
  const processLine = (raw: string, first: boolean, lineNo: number): { text: string; directive: boolean } => {
    let token = trimNewline(raw);
    if (first) token = trimLeftSpace(token);
    let directive = false;
    try {
      const escapeBefore = directives.directives.escape;
      directive = directives.feed(token);
      if (directives.directives.escape !== escapeBefore) continuation = continuationPattern(directives.directives.escape);
    } catch (e) {
      fail(e, lineNo);
    }
    return { text: isComment(token) ? '' : token, directive };
  };

  for (let raw = reader.next(); raw !== undefined; raw = reader.next()) {
    const lineNo = reader.lineNumber;
    if (isComment(raw)) {
      const c = trimSpace(trimLeftSpace(raw).slice(1));
      comments = c === '' ? [] : [...comments, c];
    }
    const first = processLine(raw, true, lineNo);
    if (first.directive) comments.pop();
    const startLine = lineNo;
    let { text: piece, continues } = trimContinuation(first.text, continuation);
    if (!continues && piece.length === 0) continue;
    let line = piece;
    let emptyContinuation = false;
    while (continues) {
      const next = reader.next();
      if (next === undefined) break;
      const processed = processLine(next, false, reader.lineNumber);
      if (isComment(next)) continue;
      if (isEmptyContinuationLine(processed.text)) {
        emptyContinuation = true;
        continue;
      }
      ({ text: piece, continues } = trimContinuation(processed.text, continuation));
      line += piece;
    }
    if (emptyContinuation) {
      warnings.push({ rule: 'NoEmptyContinuation', message: 'Empty continuation line', line: reader.lineNumber });
    }

    const escape = directives.directives.escape;
    let node: InstructionNode;
    try {
      node = nodeFromLine(line, escape, comments, startLine, sourceLines[startLine - 1] ?? '');
    } catch (e) {
      return fail(e, startLine);
    }

    const target = node.name === 'onbuild' && node.sub ? node.sub : node;
    if (heredocInstructions.has(target.name) && !target.json && line.includes('<<')) {
      let docs: Omit<Heredoc, 'content'>[] = [];
      try {
        docs = heredocsFromLine(line);
      } catch (e) {
        fail(e, startLine);
      }
      for (const doc of docs) {
        let content = '';
        let terminated = false;
        for (let body = reader.next(); body !== undefined; body = reader.next()) {
          let candidate = trimNewline(body);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += body;
        }
        if (!terminated) {
          throw new DockerfileError(`unterminated heredoc <<${doc.name}: no line "${doc.name}" ends it`, {
            file,
            line: startLine,
            column: columnOf(sourceLines[startLine - 1] ?? '', '<<'),
          });
        }
        const h: Heredoc = { ...doc, content };
        target.heredocs.push(h);
        if (target !== node) node.heredocs.push(h);
      }
    }
    node.endLine = reader.lineNumber;
    if (node.sub) node.sub.endLine = node.endLine;
    instructions.push(node);
    comments = [];
  }

  if (instructions.length === 0) {
    throw new DockerfileError('file with no instructions: a Dockerfile needs at least a FROM line', {
      file,
      line: Math.max(reader.lineNumber, 1),
      column: 1,
    });
  }
  const d = directives.directives;
  return { file, directives: d, escapeToken: d.escape, instructions, warnings, lines: sourceLines };
}

function nodeFromLine(line: string, escape: string, comments: string[], startLine: number, firstLine: string): InstructionNode {
  const { keyword, flags, rest } = splitCommand(line, escape);
  const name = keyword.toLowerCase();
  const parsed = parseArgsFor(name, rest, escape);
  const node: InstructionNode = {
    keyword,
    name,
    flags,
    args: parsed.args,
    json: parsed.json,
    heredocs: [],
    original: line,
    startLine,
    endLine: startLine,
    column: columnOf(firstLine),
    comments,
  };
  if (parsed.subLine !== undefined) {
    node.sub = nodeFromLine(parsed.subLine, escape, [], startLine, firstLine);
    node.sub.column = columnOf(firstLine, node.sub.keyword);
  }
  return node;
}
