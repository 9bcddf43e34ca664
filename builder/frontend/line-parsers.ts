/**
 * Turning one logical line into keyword, flags and arguments, with the per-instruction argument
 * rules of BuildKit's parser (exec vs shell form, key=value lists, HEALTHCHECK, ONBUILD).
 */
import { FrontendProblem } from './errors.js';
import { isSpace, splitWhitespace, trimLeftSpace, trimSpace } from './text.js';

export interface ParsedArgs {
  args: string[];
  json: boolean;
  /** For ONBUILD: the trigger's logical line. */
  subLine?: string;
}

/** Splits `KEYWORD [--flags] rest`. */
export function splitCommand(line: string, escape: string): { keyword: string; flags: string[]; rest: string } {
  const parts = splitWhitespace(trimSpace(line), 2);
  if (parts.length < 2) return { keyword: parts[0]!, flags: [], rest: '' };
  const { rest, flags } = extractFlags(parts[1]!, escape);
  return { keyword: parts[0]!, flags, rest: trimSpace(rest) };
}

/** Leading `--name[=value]` words; quotes and escapes inside them are resolved; `--` ends them. */
export function extractFlags(line: string, escape: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { rest: line.slice(pos), flags };
      phase = 'word';
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { rest: line.slice(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === escape) {
        if (pos + 1 === line.length) continue;
        ch = line[++pos]!;
      }
      word += ch;
      continue;
    }
    // in quote
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === escape) {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      ch = line[++pos]!;
    }
    word += ch;
  }
  return { rest: '', flags };
}

/** Space-separated words; quotes and escapes are kept in the words (expansion strips them later). */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let quote = '';
  let blankOK = false;
  let word = '';
  const chars = Array.from(rest);
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? chars[pos]! : '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        ch = chars[++pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === escape && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      word += ch;
      ch = chars[++pos]!;
    }
    word += ch;
  }
  return words;
}

/** ENV and LABEL: legacy `KEY value` or `k=v k2=v2` → key, value, separator triples. */
function parseNameVal(rest: string, key: string, escape: string): ParsedArgs {
  const words = parseWords(rest, escape);
  if (words.length === 0) return { args: [], json: false };
  if (!words[0]!.includes('=')) {
    const parts = splitWhitespace(rest, 2);
    if (parts.length < 2) throw new FrontendProblem(`${key} must have two arguments`, rest);
    return { args: [parts[0]!, parts[1]!, ''], json: false };
  }
  const args: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) throw new FrontendProblem(`Syntax error - can't find = in "${w}". Must be of the form: name=value`, w);
    args.push(w.slice(0, eq), w.slice(eq + 1), '=');
  }
  return { args, json: false };
}

function parseStringsWhitespaceDelimited(rest: string): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  return { args: splitWhitespace(rest, -1), json: false };
}

function parseString(rest: string): ParsedArgs {
  return { args: rest === '' ? [] : [rest], json: false };
}

/** The JSON (exec) form, or undefined when `rest` is not a JSON array (then it is shell form). */
function parseJSON(rest: string): ParsedArgs | undefined {
  rest = trimLeftSpace(rest);
  if (!rest.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(rest);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  for (const v of parsed) {
    if (typeof v !== 'string') {
      throw new FrontendProblem('when using JSON array syntax, arrays must be comprised of strings only', rest);
    }
  }
  return { args: parsed as string[], json: true };
}

function parseMaybeJSON(rest: string): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  return parseJSON(rest) ?? { args: [rest], json: false };
}

function parseMaybeJSONToList(rest: string): ParsedArgs {
  return parseJSON(rest) ?? parseStringsWhitespaceDelimited(rest);
}

/** HEALTHCHECK: the first word is the type (CMD, NONE), the rest like CMD's arguments. */
function parseHealthConfig(rest: string): ParsedArgs {
  let sep = 0;
  while (sep < rest.length && !isSpace(rest[sep]!)) sep++;
  let next = sep;
  while (next < rest.length && isSpace(rest[next]!)) next++;
  if (sep === 0) return { args: [], json: false };
  const cmd = parseMaybeJSON(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}

/** Arguments of instruction `name` (lowercase); unknown instructions keep no arguments. */
export function parseArgsFor(name: string, rest: string, escape: string): ParsedArgs {
  switch (name) {
    case 'add':
    case 'copy':
    case 'volume':
      return parseMaybeJSONToList(rest);
    case 'arg':
      return { args: parseWords(rest, escape), json: false };
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell':
      return parseMaybeJSON(rest);
    case 'env':
      return parseNameVal(rest, 'ENV', escape);
    case 'label':
      return parseNameVal(rest, 'LABEL', escape);
    case 'expose':
    case 'from':
      return parseStringsWhitespaceDelimited(rest);
    case 'healthcheck':
      return parseHealthConfig(rest);
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
      return parseString(rest);
    case 'onbuild':
      return rest === '' ? { args: [], json: false } : { args: [], json: false, subLine: rest };
    default:
      return { args: [], json: false };
  }
}

export const knownInstructions = [
  'add',
  'arg',
  'cmd',
  'copy',
  'entrypoint',
  'env',
  'expose',
  'from',
  'healthcheck',
  'label',
  'maintainer',
  'onbuild',
  'run',
  'shell',
  'stopsignal',
  'user',
  'volume',
  'workdir',
] as const;
