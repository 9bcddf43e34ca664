/** Reading a build's `--progress plain` output: which steps were cache hits. */

/**
 * The plain progress of a build as step text → outcome: `CACHED`, `DONE` (ran) or `ERROR`. Step lines are
 * `#N [stage i/n] INSTR`; the outcome is the `#N CACHED` / `#N DONE 0.1s` line of the same N.
 */
export function outcomes(stderr: string): Map<string, string> {
  const names = new Map<string, string>();
  const out = new Map<string, string>();
  for (const line of stderr.split('\n')) {
    const step = /^#(\d+) (\[[^\]]+\] .*)$/.exec(line);
    if (step) {
      names.set(step[1]!, step[2]!.replace(/^\[[^\]]+\] /, ''));
      continue;
    }
    const end = /^#(\d+) (CACHED|DONE|ERROR)/.exec(line);
    if (end && names.has(end[1]!)) out.set(names.get(end[1]!)!, end[2]!);
  }
  return out;
}

/** Every step that makes a layer (COPY, ADD, RUN, WORKDIR) was a hit; FROM and config-only steps are not cached steps. */
export function allCached(o: Map<string, string>): boolean {
  const layered = [...o].filter(([name]) => /^(COPY|ADD|RUN|WORKDIR) /.test(name));
  return layered.length > 0 && layered.every(([, v]) => v === 'CACHED');
}
