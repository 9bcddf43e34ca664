/**
 * Dockerfile frontend speed: parse, plan and dump a generated 2,000-line Dockerfile (stages,
 * continuations, heredocs, mounts, ARG/ENV, comments). Target: well under 50 ms per parse.
 */
import { buildPlan, dumpAST, parseDockerfile, StageScope } from '../builder/frontend/index.js';

/** A realistic mix of instructions, repeated until the file has `lines` lines. */
export function generateDockerfile(lines: number): string {
  const out: string[] = ['# syntax=docker/dockerfile:1', 'ARG BASE=alpine:3.20', 'ARG VERSION=1.0.0'];
  let stage = 0;
  while (out.length < lines) {
    const name = `stage${stage}`;
    out.push(
      '',
      `# stage ${stage}: build step`,
      `FROM \${BASE} AS ${name}`,
      'ARG VERSION',
      `ENV APP_HOME=/opt/app${stage} PATH=/opt/app${stage}/bin:$PATH LANG=C.UTF-8`,
      'WORKDIR $APP_HOME',
      'RUN --mount=type=cache,target=/var/cache/apk,sharing=locked \\',
      '    --mount=type=secret,id=token,required=false \\',
      '    apk add --no-cache \\',
      '      curl \\',
      '      # the compiler',
      '      gcc \\',
      '      make',
      `COPY --chown=1000:1000 --chmod=0644 ["src/${stage}", "./src/"]`,
      'RUN <<EOF',
      'set -e',
      'make -C src VERSION=$VERSION',
      'echo "built ${VERSION}"',
      'EOF',
      `LABEL org.opencontainers.image.version="$VERSION" stage="${stage}"`,
      stage > 0 ? `COPY --from=stage${stage - 1} --link /opt /opt` : 'COPY . /opt',
      'EXPOSE 8080/tcp',
      'HEALTHCHECK --interval=30s --timeout=3s CMD ["wget", "-q", "localhost:8080"]',
      'USER 1000:1000',
      'CMD ["/opt/app/bin/server", "--port", "8080"]',
    );
    stage++;
  }
  return out.slice(0, lines).join('\n') + '\n';
}

function measure(label: string, iterations: number, fn: () => unknown): number {
  for (let i = 0; i < 5; i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)]!;
  const p95 = samples[Math.floor(samples.length * 0.95)]!;
  console.log(`${label.padEnd(34)} median ${median.toFixed(2)} ms   p95 ${p95.toFixed(2)} ms   (${iterations} runs)`);
  return median;
}

export async function run(): Promise<void> {
  const text = generateDockerfile(2000);
  const ast = parseDockerfile(text);
  console.log(`input: ${text.split('\n').length - 1} lines, ${text.length} bytes, ${ast.instructions.length} instructions`);
  const parse = measure('parseDockerfile', 50, () => parseDockerfile(text));
  measure('parse + buildPlan (typed, graph)', 50, () => buildPlan(text));
  measure('dumpAST', 50, () => dumpAST(ast));
  const plan = buildPlan(text);
  measure('expand every instruction (scopes)', 50, () => {
    const scopes: StageScope[] = [];
    for (const s of plan.needed) {
      const scope = new StageScope(plan, s.base.type === 'stage' ? { parent: scopes[s.base.index] } : { imageEnv: ['PATH=/bin'] });
      for (const ins of s.instructions) scope.apply(ins);
      scopes[s.index] = scope;
    }
  });
  console.log(`parse: ${(parse / 50).toFixed(2)}× the 50 ms target (lower is better)`);
}
