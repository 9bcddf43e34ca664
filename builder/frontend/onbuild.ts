/** ONBUILD triggers stored in a base image's config, parsed back into instructions for the child build. */
import { DockerfileError } from './errors.js';
import type { Instruction } from './instructions.js';
import { parseDockerfile } from './parser.js';
import { typeInstruction } from './typed.js';

/**
 * Parses the triggers of a base image (`config.OnBuild`, e.g. `["RUN make", "COPY . /src"]`) in order.
 * `file` names the source in messages (e.g. `ONBUILD of alpine:3`).
 */
export function parseOnbuildTrigger(triggers: readonly string[], opts: { file?: string; escapeToken?: string } = {}): Instruction[] {
  const file = opts.file ?? 'ONBUILD';
  const header = opts.escapeToken === '`' ? '# escape=`\n' : '';
  const ast = parseDockerfile(header + triggers.join('\n') + '\n', { file });
  return ast.instructions.map((node) => {
    const ins = typeInstruction(node, { file, lines: ast.lines });
    if (ins.kind === 'ONBUILD' || ins.kind === 'FROM' || ins.kind === 'MAINTAINER') {
      throw new DockerfileError(`${ins.kind} isn't allowed as an ONBUILD trigger`, ins.location);
    }
    return ins;
  });
}
