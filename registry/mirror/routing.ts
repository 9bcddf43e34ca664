import { DOCKER_HUB } from '../../oci/index.js';

/** Where a repository name of a request leads. */
export type Route =
  /** A repository of this registry (pushed here): no upstream involved. */
  | { kind: 'local' }
  /**
   * Content of `upstream`'s repository `remote`, cached here under `cached`. `explicit` when the client
   * named the upstream (`?ns=` or a path prefix): such names are the upstream's alone, so pushes are
   * refused; otherwise (the default upstream) a repository pushed here under the same name wins.
   */
  | { kind: 'mirror'; upstream: string; remote: string; cached: string; explicit: boolean };

/**
 * The name a mirrored repository is cached under: `docker.io/library/busybox`. A registry with a port
 * (`localhost:5000`) cannot be a name component, so its colon becomes a dash.
 */
export function cachedName(upstream: string, remote: string): string {
  return `${upstream.replace(/:/g, '-')}/${remote}`;
}

/** Docker Hub's official images live under `library/` (`busybox` is `library/busybox`). */
function remoteName(upstream: string, path: string): string {
  return upstream === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path;
}

/**
 * Routes a request's repository name, in order: containerd's `?ns=REGISTRY` (hosts.toml mirrors send
 * it); a path prefix naming a mirrored registry (`ghcr.io/org/app` → ghcr.io's `org/app`); otherwise the
 * default upstream (docker.io: docker's `registry-mirrors` send Docker Hub names without a prefix), with
 * `library/` added to one-component names. Names no upstream claims are local.
 */
export function routeName(name: string, namespace: string | undefined, upstreams: ReadonlySet<string>, defaultUpstream: string | undefined): Route {
  if (namespace !== undefined && upstreams.has(namespace)) {
    const remote = remoteName(namespace, name);
    return { kind: 'mirror', upstream: namespace, remote, cached: cachedName(namespace, remote), explicit: true };
  }
  const slash = name.indexOf('/');
  if (slash > 0) {
    const first = name.slice(0, slash);
    const upstream = [...upstreams].find((u) => u.replace(/:/g, '-') === first);
    if (upstream !== undefined) {
      const remote = remoteName(upstream, name.slice(slash + 1));
      return { kind: 'mirror', upstream, remote, cached: cachedName(upstream, remote), explicit: true };
    }
  }
  if (defaultUpstream !== undefined && upstreams.has(defaultUpstream)) {
    const remote = remoteName(defaultUpstream, name);
    return { kind: 'mirror', upstream: defaultUpstream, remote, cached: cachedName(defaultUpstream, remote), explicit: false };
  }
  return { kind: 'local' };
}
