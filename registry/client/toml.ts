/**
 * A small TOML reader: enough for containers' registries.conf (tables, arrays of tables, dotted and
 * quoted keys, strings, booleans, numbers, arrays and inline tables). Multi-line strings and dates
 * are not supported and are reported as errors with their line.
 */
export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
export interface TomlTable {
  [key: string]: TomlValue;
}

export class TomlError extends Error {
  constructor(source: string, line: number, message: string) {
    super(`${source}:${line}: ${message}`);
    this.name = 'TomlError';
  }
}

export function parseToml(text: string, source = 'toml'): TomlTable {
  return new Parser(text, source).parse();
}

class Parser {
  private pos = 0;
  private readonly root: TomlTable = {};
  private current: TomlTable = this.root;

  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  private get line(): number {
    return this.text.slice(0, this.pos).split('\n').length;
  }

  private fail(message: string): never {
    throw new TomlError(this.source, this.line, message);
  }

  private peek(): string {
    return this.text[this.pos] ?? '';
  }

  /** Skips blanks and, with `newlines`, line breaks and comments too. */
  private skip(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '#') while (this.pos < this.text.length && this.peek() !== '\n') this.pos++;
      else if (newlines && c === '\n') this.pos++;
      else return;
    }
  }

  private endOfLine(): void {
    this.skip(false);
    const c = this.peek();
    if (c === '\n') this.pos++;
    else if (c !== '') this.fail(`unexpected "${c}" after a value`);
  }

  parse(): TomlTable {
    for (;;) {
      this.skip(true);
      if (this.pos >= this.text.length) return this.root;
      if (this.peek() === '[') this.header();
      else {
        this.keyValue(this.current);
        this.endOfLine();
      }
    }
  }

  private header(): void {
    const array = this.text.startsWith('[[', this.pos);
    this.pos += array ? 2 : 1;
    const path = this.key();
    if (!this.text.startsWith(array ? ']]' : ']', this.pos)) this.fail('unterminated table header');
    this.pos += array ? 2 : 1;
    this.endOfLine();
    let table = this.root;
    for (const [i, part] of path.entries()) {
      const last = i === path.length - 1;
      let next = table[part];
      if (last && array) {
        if (next === undefined) next = table[part] = [];
        if (!Array.isArray(next)) this.fail(`"${path.join('.')}" is not an array of tables`);
        const fresh: TomlTable = {};
        next.push(fresh);
        table = fresh;
        break;
      }
      if (next === undefined) next = table[part] = {};
      // A path through an array of tables continues in its last element.
      if (Array.isArray(next)) next = next[next.length - 1] as TomlValue;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) this.fail(`"${path.slice(0, i + 1).join('.')}" is not a table`);
      table = next;
    }
    this.current = table;
  }

  private key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skip(false);
      const c = this.peek();
      if (c === '"' || c === "'") parts.push(this.string());
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(this.text.slice(this.pos, this.pos + 256));
        if (!m) this.fail(`expected a key, found "${c || 'end of file'}"`);
        parts.push(m[0]);
        this.pos += m[0].length;
      }
      this.skip(false);
      if (this.peek() !== '.') return parts;
      this.pos++;
    }
  }

  private keyValue(into: TomlTable): void {
    const path = this.key();
    if (this.peek() !== '=') this.fail(`expected "=" after key "${path.join('.')}"`);
    this.pos++;
    this.skip(false);
    const value = this.value();
    let table = into;
    for (const part of path.slice(0, -1)) {
      const next = (table[part] ??= {});
      if (typeof next !== 'object' || Array.isArray(next)) this.fail(`"${part}" is not a table`);
      table = next;
    }
    const last = path[path.length - 1]!;
    if (last in table) this.fail(`key "${path.join('.')}" is defined twice`);
    table[last] = value;
  }

  private value(): TomlValue {
    const c = this.peek();
    if (c === '"' || c === "'") {
      if (this.text.startsWith(c.repeat(3), this.pos)) this.fail('multi-line strings are not supported');
      return this.string();
    }
    if (c === '[') return this.array();
    if (c === '{') return this.inlineTable();
    const m = /^(true|false|[+-]?(?:inf|nan)|[+-]?[0-9_]+(?:\.[0-9_]+)?(?:[eE][+-]?[0-9_]+)?|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)(?=[\s,\]}#]|$)/.exec(this.text.slice(this.pos, this.pos + 128));
    if (!m) this.fail(`unsupported value starting with "${c || 'end of file'}"`);
    this.pos += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    return Number(m[0].replace(/_/g, '').replace(/^0o/, '0o'));
  }

  private string(): string {
    const quote = this.peek();
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.text[this.pos++];
      if (c === undefined || c === '\n') this.fail('unterminated string');
      if (c === quote) return out;
      if (c === '\\' && quote === '"') {
        const e = this.text[this.pos++];
        const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };
        if (e !== undefined && e in simple) out += simple[e];
        else if (e === 'u' || e === 'U') {
          const len = e === 'u' ? 4 : 8;
          const hex = this.text.slice(this.pos, this.pos + len);
          if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) this.fail('invalid unicode escape');
          out += String.fromCodePoint(parseInt(hex, 16));
          this.pos += len;
        } else this.fail(`invalid escape "\\${e ?? ''}"`);
      } else out += c;
    }
  }

  private array(): TomlValue[] {
    this.pos++;
    const out: TomlValue[] = [];
    for (;;) {
      this.skip(true);
      if (this.peek() === ']') {
        this.pos++;
        return out;
      }
      out.push(this.value());
      this.skip(true);
      if (this.peek() === ',') this.pos++;
      else if (this.peek() !== ']') this.fail('expected "," or "]" in an array');
    }
  }

  private inlineTable(): TomlTable {
    this.pos++;
    const out: TomlTable = {};
    this.skip(false);
    if (this.peek() === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.keyValue(out);
      this.skip(false);
      if (this.peek() === ',') this.pos++;
      else if (this.peek() === '}') {
        this.pos++;
        return out;
      } else this.fail('expected "," or "}" in an inline table');
    }
  }
}
