export { parseDockerfile, type ParseOptions } from './parser.js';
export type { DockerfileAST, InstructionNode, Heredoc, ParseWarning } from './ast.js';
export { dumpAST, goQuote } from './dump.js';
export { DockerfileError, type SourceLocation } from './errors.js';
export { processWord, processWords, processWordWithMatches, type EnvSource, type LexOptions, type WordResult } from './shell-lex.js';
