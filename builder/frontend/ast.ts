/** The parse tree: one node per instruction, as BuildKit's parser produces it (before typing). */
import type { Directives, EscapeToken } from './directives.js';

/** A here-document attached to a RUN, COPY or ADD line. */
export interface Heredoc {
  /** The delimiter word (`EOF`), quotes removed. */
  name: string;
  /** `3<<EOF` → 3; 0 when not given. */
  fileDescriptor: number;
  /** False when the delimiter was quoted: the body is taken literally. */
  expand: boolean;
  /** `<<-EOF`: leading tabs are stripped from the body. */
  chomp: boolean;
  /** The body lines as written, each with its line ending, without the delimiter line. */
  content: string;
}

export interface InstructionNode {
  /** The instruction word as written (`RUN`, `run`). */
  keyword: string;
  /** Lowercased keyword (`run`). */
  name: string;
  /** Flags before the arguments, as written (`--mount=type=cache,target=/x`); a bare `--` is dropped. */
  flags: string[];
  /**
   * Arguments as BuildKit's parser shapes them: exec form → one per JSON element; shell form → the
   * rest of the line; ENV/LABEL → key, value, separator triples; HEALTHCHECK → type then command.
   */
  args: string[];
  /** True when the arguments were a JSON array (exec form). */
  json: boolean;
  /** The trigger of an ONBUILD. */
  sub?: InstructionNode;
  heredocs: Heredoc[];
  /** The logical line: continuations joined, comments inside them removed. */
  original: string;
  startLine: number;
  endLine: number;
  /** Column (1-based) of the keyword on `startLine`. */
  column: number;
  /** Comment lines right above the instruction (without `#`). */
  comments: string[];
}

export interface ParseWarning {
  rule: string;
  message: string;
  line: number;
}

export interface DockerfileAST {
  file: string;
  directives: Directives;
  escapeToken: EscapeToken;
  instructions: InstructionNode[];
  warnings: ParseWarning[];
  /** Physical source lines (without line endings), for columns in messages. */
  lines: string[];
}
