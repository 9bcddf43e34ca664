/**
 * The part of Go's text/template that docker's `--format` flags are used with: `{{.Field.Sub}}`, `{{.}}`,
 * `{{json .X}}`, `{{index .X 0}}` / `{{index .X "key"}}`, `{{join .X ","}}`, `{{upper}}`/`{{lower}}`/`{{title}}`,
 * `{{println}}`, pipes (`{{.X | json}}`), `{{range .X}}…{{end}}`, `{{if .X}}…{{else}}…{{end}}`,
 * `{{with .X}}…{{end}}`, `{{- trim -}}` markers. Anything else is refused with a one-line
 * TemplateError when parsed or evaluated, never printed raw.
 */

export class TemplateError extends Error {
  constructor(message: string) {
    super(`template: ${message}`);
    this.name = 'TemplateError';
  }
}

/** Objects that behave as Go maps: a missing key is `<no value>`, not an error (labels, for instance). */
const goMaps = new WeakSet<object>();
export function asGoMap<T extends object>(o: T): T {
  goMaps.add(o);
  return o;
}

type Arg =
  | { kind: 'field'; path: string[] }
  | { kind: 'dot' }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'func'; name: string };
/** A pipeline: commands separated by `|`; each command a function name and its args, or one value. */
type Pipeline = Arg[][];
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | { kind: 'range' | 'if' | 'with'; pipe: Pipeline; body: Node[]; otherwise: Node[] };

const funcs = new Set(['json', 'index', 'join', 'upper', 'lower', 'title', 'println', 'print', 'len', 'truncate', 'split', 'pad']);

function tokenize(src: string): Arg[] {
  const out: Arg[] = [];
  const re =
    /\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+(?:\.\d+)?)\b|(\.(?:[A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(\.)|(\|)|([A-Za-z_][A-Za-z0-9_]*))/y;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) throw new TemplateError(`cannot parse "${src.trim()}" at "${src.slice(i).trim()}"`);
    i = re.lastIndex;
    if (m[1] !== undefined) out.push({ kind: 'string', value: JSON.parse(m[1]) as string });
    else if (m[2] !== undefined) out.push({ kind: 'string', value: m[2].slice(1, -1) });
    else if (m[3] !== undefined) out.push({ kind: 'number', value: Number(m[3]) });
    else if (m[4] !== undefined) out.push({ kind: 'field', path: m[4].slice(1).split('.') });
    else if (m[5] !== undefined) out.push({ kind: 'dot' });
    else if (m[6] !== undefined) out.push({ kind: 'func', name: '|' });
    else if (m[7] === 'true' || m[7] === 'false') out.push({ kind: 'bool', value: m[7] === 'true' });
    else if (funcs.has(m[7]!)) out.push({ kind: 'func', name: m[7]! });
    else throw new TemplateError(`function "${m[7]}" not defined`);
  }
  return out;
}

function pipeline(src: string): Pipeline {
  const tokens = tokenize(src);
  if (tokens.length === 0) throw new TemplateError('missing value for command');
  const cmds: Pipeline = [[]];
  for (const t of tokens) {
    if (t.kind === 'func' && t.name === '|') cmds.push([]);
    else cmds[cmds.length - 1]!.push(t);
  }
  if (cmds.some((c) => c.length === 0)) throw new TemplateError(`missing command in pipeline "${src.trim()}"`);
  return cmds;
}

/** Parses a template; a syntax error or an unknown function is a TemplateError. */
export function parseTemplate(src: string): Node[] {
  const root: Node[] = [];
  const stack: Array<{ node: Extract<Node, { body: Node[] }>; inElse: boolean }> = [];
  const target = () => {
    const top = stack[stack.length - 1];
    return top ? (top.inElse ? top.node.otherwise : top.node.body) : root;
  };
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) target().push({ kind: 'text', text });
      break;
    }
    const close = src.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(`unclosed action in "${src}"`);
    let inner = src.slice(open + 2, close);
    if (/^-\s/.test(inner)) {
      text = text.replace(/\s+$/, '');
      inner = inner.slice(2);
    }
    if (/\s-$/.test(inner)) {
      trimNext = true;
      inner = inner.slice(0, -2);
    }
    if (text) target().push({ kind: 'text', text });
    i = close + 2;
    const word = /^\s*([a-z]+)\b\s*(.*)$/s.exec(inner);
    const keyword = word?.[1];
    if (keyword === 'range' || keyword === 'if' || keyword === 'with') {
      const node = { kind: keyword, pipe: pipeline(word![2]!), body: [], otherwise: [] } as Extract<Node, { body: Node[] }>;
      target().push(node);
      stack.push({ node, inElse: false });
    } else if (keyword === 'else') {
      const top = stack[stack.length - 1];
      if (!top || top.inElse) throw new TemplateError('unexpected {{else}}');
      top.inElse = true;
    } else if (keyword === 'end') {
      if (!stack.pop()) throw new TemplateError('unexpected {{end}}');
    } else if (/^\s*\/\*.*\*\/\s*$/s.test(inner)) {
      // a comment
    } else if (keyword && ['define', 'template', 'block', 'break', 'continue', 'nil'].includes(keyword)) {
      throw new TemplateError(`{{${keyword}}} is not supported`);
    } else {
      target().push({ kind: 'action', pipe: pipeline(inner) });
    }
  }
  if (stack.length) throw new TemplateError(`unexpected EOF: {{${stack[stack.length - 1]!.node.kind}}} without {{end}}`);
  return root;
}

function field(value: unknown, path: string[]): unknown {
  let v = value;
  const walked: string[] = [];
  for (const name of path) {
    walked.push(name);
    if (v === null || v === undefined) throw new TemplateError(`nil pointer evaluating .${walked.join('.')}`);
    if (typeof v !== 'object' || Array.isArray(v)) throw new TemplateError(`can't evaluate field ${name} in type ${goType(v)}`);
    if (Object.prototype.hasOwnProperty.call(v, name)) v = (v as Record<string, unknown>)[name];
    else if (goMaps.has(v)) v = undefined;
    else throw new TemplateError(`can't evaluate field ${name} (.${walked.join('.')})`);
  }
  return v;
}

function goType(v: unknown): string {
  if (Array.isArray(v)) return 'slice';
  if (v === null || v === undefined) return 'nil';
  return typeof v === 'object' ? 'map' : typeof v;
}

/** A value as Go's fmt prints it with %v: slices `[a b]`, maps `map[k:v]`, nil `<nil>` / `<no value>`. */
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, x]) => `${k}:${goString(x)}`).join(' ')}]`;
  }
  return String(v);
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return !!v;
}

function argValue(a: Arg, dot: unknown): unknown {
  switch (a.kind) {
    case 'dot':
      return dot;
    case 'field':
      return field(dot, a.path);
    case 'func':
      throw new TemplateError(`${a.name} is a function, not a value`);
    default:
      return a.value;
  }
}

function call(name: string, args: unknown[]): unknown {
  const need = (n: number) => {
    if (args.length !== n) throw new TemplateError(`wrong number of args for ${name}: want ${n} got ${args.length}`);
  };
  switch (name) {
    case 'json':
      need(1);
      // docker's json func: encoding/json without the trailing newline
      return JSON.stringify(args[0] === undefined ? null : args[0]);
    case 'index': {
      if (args.length < 2) throw new TemplateError('wrong number of args for index: want at least 2');
      let v = args[0];
      for (const k of args.slice(1)) {
        if (Array.isArray(v)) {
          if (typeof k !== 'number' || !Number.isInteger(k)) throw new TemplateError(`cannot index slice with ${goString(k)}`);
          if (k < 0 || k >= v.length) throw new TemplateError(`error calling index: index out of range: ${k}`);
          v = v[k];
        } else if (v && typeof v === 'object') {
          if (typeof k !== 'string') throw new TemplateError(`cannot index map with ${goString(k)}`);
          v = Object.prototype.hasOwnProperty.call(v, k) ? (v as Record<string, unknown>)[k] : '';
        } else throw new TemplateError(`can't index item of type ${goType(v)}`);
      }
      return v;
    }
    case 'join':
      need(2);
      if (!Array.isArray(args[0])) throw new TemplateError(`join needs a list, not ${goType(args[0])}`);
      return args[0].map(goString).join(String(args[1]));
    case 'split':
      need(2);
      return String(args[0]).split(String(args[1]));
    case 'upper':
      need(1);
      return goString(args[0]).toUpperCase();
    case 'lower':
      need(1);
      return goString(args[0]).toLowerCase();
    case 'title':
      need(1);
      return goString(args[0]).replace(/\b\w/g, (c) => c.toUpperCase());
    case 'len':
      need(1);
      if (Array.isArray(args[0]) || typeof args[0] === 'string') return args[0].length;
      if (args[0] && typeof args[0] === 'object') return Object.keys(args[0]).length;
      throw new TemplateError(`len of ${goType(args[0])}`);
    case 'truncate':
      need(2);
      return goString(args[0]).slice(0, Number(args[1]));
    case 'pad':
      need(3);
      return ' '.repeat(Number(args[1])) + goString(args[0]) + ' '.repeat(Number(args[2]));
    case 'println':
      return args.map(goString).join(' ') + '\n';
    case 'print':
      return args.map(goString).join('');
  }
  throw new TemplateError(`function "${name}" not defined`);
}

function evalPipe(pipe: Pipeline, dot: unknown): unknown {
  let prev: { value: unknown } | undefined;
  for (const cmd of pipe) {
    const head = cmd[0]!;
    const rest = cmd.slice(1);
    if (head.kind === 'func') {
      const args = rest.map((a) => argValue(a, dot));
      if (prev) args.push(prev.value);
      prev = { value: call(head.name, args) };
    } else {
      if (rest.length || prev) throw new TemplateError(`can't give argument to non-function ${head.kind === 'field' ? '.' + head.path.join('.') : 'value'}`);
      prev = { value: argValue(head, dot) };
    }
  }
  return prev!.value;
}

function execute(nodes: Node[], dot: unknown, out: string[]): void {
  for (const n of nodes) {
    if (n.kind === 'text') out.push(n.text);
    else if (n.kind === 'action') out.push(goString(evalPipe(n.pipe, dot)));
    else {
      const v = evalPipe(n.pipe, dot);
      if (n.kind === 'range') {
        const items = Array.isArray(v)
          ? v
          : v && typeof v === 'object'
            ? Object.keys(v)
                .sort()
                .map((k) => (v as Record<string, unknown>)[k])
            : v === undefined || v === null
              ? []
              : undefined;
        if (!items) throw new TemplateError(`range can't iterate over ${goString(v)}`);
        if (items.length === 0) execute(n.otherwise, dot, out);
        for (const item of items) execute(n.body, item, out);
      } else if (truthy(v)) execute(n.body, n.kind === 'with' ? v : dot, out);
      else execute(n.otherwise, dot, out);
    }
  }
}

/** A parsed template, ready to run on values. */
export class GoTemplate {
  private readonly nodes: Node[];
  constructor(readonly source: string) {
    this.nodes = parseTemplate(source);
  }
  render(dot: unknown): string {
    const out: string[] = [];
    execute(this.nodes, dot, out);
    return out.join('');
  }
  /** Field names used at top level (`{{.Repository}}` → Repository), in order: the headers of a `table` format. */
  fields(): string[] {
    const names: string[] = [];
    const walk = (nodes: Node[]) => {
      for (const n of nodes) {
        if (n.kind === 'action') {
          for (const cmd of n.pipe) for (const a of cmd) if (a.kind === 'field') names.push(a.path[0]!);
        }
      }
    };
    walk(this.nodes);
    return names;
  }
}

/** docker's formatter: a leading `table` makes a table with headers; `\t` and `\n` written out are real tabs and newlines. */
export interface DockerFormat {
  table: boolean;
  template: GoTemplate;
}

export function dockerFormat(format: string): DockerFormat {
  let f = format;
  let isTable = false;
  if (f.startsWith('table')) {
    isTable = true;
    f = f.slice(5);
  }
  f = f.trim().replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return { table: isTable, template: new GoTemplate(f) };
}

/**
 * Renders rows with a docker format: one line per value; a table gets a header line (each placeholder
 * replaced by its header) and columns aligned like docker's tabwriter (padding 3, tabs as separators).
 */
export function renderFormat(format: DockerFormat, values: unknown[], headers: Record<string, string>): string {
  const lines = values.map((v) => format.template.render(v));
  if (!format.table) return lines.map((l) => l + '\n').join('');
  const headerValue = new Proxy(
    {},
    {
      get: (_, key) => (typeof key === 'string' ? (headers[key] ?? key.toUpperCase()) : undefined),
      has: () => true,
      getOwnPropertyDescriptor: (_, key) => ({
        configurable: true,
        enumerable: true,
        value: typeof key === 'string' ? (headers[key] ?? key.toUpperCase()) : undefined,
      }),
    },
  );
  let header: string;
  try {
    header = format.template.render(headerValue);
  } catch {
    header = format.template
      .fields()
      .map((f) => headers[f] ?? f.toUpperCase())
      .join('\t');
  }
  // docker's tabwriter: minimum width 10, padding 3; a cell followed by a tab is padded, the last one is not
  const rows = [header, ...lines].map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const r of rows) for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 10, c.length + 3);
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('') + '\n').join('');
}
