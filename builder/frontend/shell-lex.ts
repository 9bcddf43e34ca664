/**
 * Shell-word processing with BuildKit's rules (its shell lexer): quotes, escapes and `$VAR`,
 * `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?m}`, `${VAR?m}`,
 * `${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`, `${VAR/p/r}`, `${VAR//p/r}`.
 * It is not a shell: no command substitution, no globbing, no arithmetic.
 */
import { FrontendProblem } from './errors.js';
import { shellPatternToRegex, trimPrefix, trimSuffix } from './shell-pattern.js';
import { isDigit, isLetter, isSpace } from './text.js';

/** Variables visible to an expansion. A Map, a plain object, or a lookup function. */
export type EnvSource = ReadonlyMap<string, string> | Readonly<Record<string, string>> | ((name: string) => string | undefined);

export interface LexOptions {
  /** `\` (default) or `` ` ``, from the `# escape=` directive. */
  escapeToken?: string | undefined;
  /** Keep quote characters in the output (used to find heredoc words). */
  rawQuotes?: boolean | undefined;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean | undefined;
  /** Treat quotes as ordinary characters (heredoc bodies). */
  skipProcessQuotes?: boolean | undefined;
  /** Leave references to unset variables as written instead of expanding them to "". */
  skipUnsetEnv?: boolean | undefined;
}

export interface WordResult {
  result: string;
  words: string[];
  /** Names that were looked up and found. */
  matched: Set<string>;
  /** Names that were looked up and not set. */
  unmatched: Set<string>;
}

const EOF = '';

function lookup(env: EnvSource): (name: string) => string | undefined {
  if (typeof env === 'function') return env;
  if (env instanceof Map) return (n) => env.get(n);
  const rec = env as Readonly<Record<string, string>>;
  return (n) => (Object.prototype.hasOwnProperty.call(rec, n) ? rec[n] : undefined);
}

/** Expands `word` into one string (BuildKit's ProcessWord): spaces between words are kept. */
export function processWord(word: string, env: EnvSource, opts: LexOptions = {}): string {
  return processWordWithMatches(word, env, opts).result;
}

/** Expands and splits `word` into words after expansion, honouring quotes (BuildKit's ProcessWords). */
export function processWords(word: string, env: EnvSource, opts: LexOptions = {}): string[] {
  return processWordWithMatches(word, env, opts).words;
}

export function processWordWithMatches(word: string, env: EnvSource, opts: LexOptions = {}): WordResult {
  const lexer = new ShellWord(word, lookup(env), opts);
  try {
    const [result, words] = lexer.processStopOn(EOF, lexer.rawEscapes);
    return { result, words, matched: lexer.matched, unmatched: lexer.unmatched };
  } catch (e) {
    if (e instanceof FrontendProblem) throw new FrontendProblem(`failed to process "${word}": ${e.message}`, word);
    throw e;
  }
}

class Words {
  buf = '';
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf.length !== 0) {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else this.addRawChar(ch);
  }
  addRawChar(ch: string): void {
    this.buf += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.buf += s;
    this.inWord = true;
  }
  get(): string[] {
    if (this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private readonly chars: string[];
  private pos = 0;
  private readonly escapeToken: string;
  rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    word: string,
    private readonly getEnv: (name: string) => string | undefined,
    private readonly opts: LexOptions,
  ) {
    this.chars = Array.from(word);
    this.escapeToken = opts.escapeToken ?? '\\';
    this.rawEscapes = !!opts.rawEscapes;
  }

  private peek(): string {
    return this.pos < this.chars.length ? this.chars[this.pos]! : EOF;
  }
  private next(): string {
    return this.pos < this.chars.length ? this.chars[this.pos++]! : EOF;
  }

  private env(name: string): string | undefined {
    const v = this.getEnv(name);
    if (v !== undefined) this.matched.add(name);
    else this.unmatched.add(name);
    return v;
  }

  /** Reads up to `stop` (consumed) or the end of input when `stop` is EOF. */
  processStopOn(stop: string, rawEscapes: boolean): [string, string[]] {
    let result = '';
    const words = new Words();
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        let ch = this.peek();
        if (stop !== EOF && ch === stop) {
          this.next();
          return [result, words.get()];
        }
        let special: string | undefined;
        if (ch === '$') special = this.processDollar();
        else if (ch === '<') special = this.processPossibleHeredoc();
        else if (!this.opts.skipProcessQuotes && ch === "'") special = this.processSingleQuote();
        else if (!this.opts.skipProcessQuotes && ch === '"') special = this.processDoubleQuote();
        if (special !== undefined) {
          result += special;
          if (ch === '$') words.addString(special);
          else words.addRawString(special);
          continue;
        }
        ch = this.next();
        if (ch === this.escapeToken) {
          if (this.rawEscapes) {
            words.addRawChar(ch);
            result += ch;
          }
          ch = this.next();
          if (ch === EOF) break;
          words.addRawChar(ch);
        } else words.addChar(ch);
        result += ch;
      }
      if (stop !== EOF) throw new FrontendProblem(`unexpected end of statement while looking for matching ${stop}`);
      return [result, words.get()];
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.next();
    if (this.opts.rawQuotes) result += ch;
    for (;;) {
      ch = this.next();
      if (ch === EOF) throw new FrontendProblem('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new FrontendProblem('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        const ch = this.next();
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      if (p === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.escapeToken) {
        if (this.rawEscapes) result += ch;
        const q = this.peek();
        if (q === EOF) continue; // a trailing escape is dropped
        if (q === '"' || q === '$' || q === this.escapeToken) ch = this.next();
      }
      result += ch;
    }
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.env(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === EOF) throw new FrontendProblem("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new FrontendProblem('syntax error: bad substitution');
    const name = this.processName();
    if (this.peek() === EOF) throw new FrontendProblem("syntax error: missing '}'");
    let ch = this.next();
    let chs = ch;
    let nullIsUnset = false;
    switch (ch) {
      case '}': {
        const value = this.env(name);
        if (value === undefined && this.opts.skipUnsetEnv) return `\${${name}}`;
        return value ?? '';
      }
      case ':':
      case '+':
      case '-':
      case '?':
      case '#':
      case '%': {
        if (ch === ':') {
          nullIsUnset = true;
          ch = this.next();
          chs += ch;
        }
        const raw = ch === '#' || ch === '%';
        if (nullIsUnset && raw) throw new FrontendProblem(`unsupported modifier (${chs}) in substitution`);
        let word = this.stopOrMissing('}', raw);
        const value = this.env(name);
        if (this.opts.skipUnsetEnv && value === undefined) return `\${${name}${chs}${word}}`;
        const unset = value === undefined || (nullIsUnset && value === '');
        switch (ch) {
          case '-':
            return unset ? word : value!;
          case '+':
            return unset ? '' : word;
          case '?':
            if (value === undefined) throw new FrontendProblem(`${name}: ${word || 'is not allowed to be unset'}`);
            if (nullIsUnset && value === '') throw new FrontendProblem(`${name}: ${word || 'is not allowed to be empty'}`);
            return value;
          case '#':
          case '%': {
            let greedy = false;
            if (word.length > 0 && word[0] === ch) {
              greedy = true;
              word = word.slice(1);
            }
            return ch === '%' ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy);
          }
          default:
            throw new FrontendProblem(`unsupported modifier (${chs}) in substitution`);
        }
      }
      case '/': {
        const all = this.peek() === '/';
        if (all) this.next();
        let pattern: string;
        try {
          pattern = this.processStopOn('/', true)[0];
        } catch (e) {
          if (this.peek() === EOF) throw new FrontendProblem("syntax error: missing '/' in ${}");
          throw e;
        }
        const replacement = this.stopOrMissing('}', true);
        const value = this.env(name);
        if (this.opts.skipUnsetEnv && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
        const re = shellPatternToRegex(pattern, true, false, all);
        const v = value ?? '';
        if (all) return v.replace(re, () => replacement);
        const m = re.exec(v);
        return m ? v.slice(0, m.index) + replacement + v.slice(m.index + m[0].length) : v;
      }
      default:
        throw new FrontendProblem(`unsupported modifier (${chs}) in substitution`);
    }
  }

  private stopOrMissing(stop: string, raw: boolean): string {
    try {
      return this.processStopOn(stop, raw)[0];
    } catch (e) {
      if (this.peek() === EOF) throw new FrontendProblem("syntax error: missing '}'");
      throw e;
    }
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name.length === 0 && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += this.next();
        return name;
      }
      if (name.length === 0 && '@*#?-$!0'.includes(ch)) return this.next();
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }

  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    let space = '';
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === '\r') space += this.next();
    return '<<' + space;
  }
}
