/**
 * What every stage starts with when its base does not say: moby's `system.DefaultPathEnv("linux")`. BuildKit
 * (dockerfile2llb's dispatchStages) and docker's legacy builder append it to a base's Env that has no
 * PATH — images made with `docker import`, FROM scratch — so `$PATH` expands to it and the image config
 * carries it even without an ENV line.
 */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_PATH_ENV = `PATH=${DEFAULT_PATH}`;

/** `env` (`KEY=value` list) with `PATH=<default>` appended when it has no PATH. */
export function withDefaultPath(env: readonly string[] | null | undefined): string[] {
  const out = [...(env ?? [])];
  if (!out.some((kv) => kv === 'PATH' || kv.startsWith('PATH='))) out.push(DEFAULT_PATH_ENV);
  return out;
}
