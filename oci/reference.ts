import { parseDigest, type Digest, DigestError } from './digest.js';

/** A normalized image reference: `registry/repository[:tag][@digest]`. */
export interface Reference {
  /** Registry host with optional port, e.g. `docker.io`, `localhost:5000`. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  readonly repository: string;
  readonly tag?: string | undefined;
  readonly digest?: Digest | undefined;
}

export class ReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReferenceError';
  }
}

export const DOCKER_HUB = 'docker.io';
const LEGACY_HUB = 'index.docker.io';
const MAX_NAME_LENGTH = 255;

const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainComponent = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const ipv6Host = /^\[[a-fA-F0-9:]+\]$/;

/** Whether `name` is a valid repository path (the distribution spec's `<name>` grammar). */
export function isValidRepositoryName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  return name.split('/').every((c) => pathComponent.test(c));
}

export function isValidTag(tag: string): boolean {
  return tagPattern.test(tag);
}

function validateDomain(domain: string, input: string): void {
  let host = domain;
  const portMatch = /^(.*):(\d+)$/.exec(domain);
  if (portMatch) host = portMatch[1]!;
  else if (domain.includes(':') && !ipv6Host.test(domain)) throw new ReferenceError(`invalid reference "${input}": registry "${domain}" has an invalid port`);
  if (ipv6Host.test(host)) return;
  if (!host.split('.').every((c) => domainComponent.test(c))) {
    throw new ReferenceError(`invalid reference "${input}": registry host "${host}" is not a valid host name`);
  }
}

function validatePath(path: string, input: string): void {
  if (path !== path.toLowerCase()) throw new ReferenceError(`invalid reference "${input}": repository name "${path}" must be lowercase`);
  for (const component of path.split('/')) {
    if (component === '') throw new ReferenceError(`invalid reference "${input}": repository "${path}" has an empty path component`);
    if (!pathComponent.test(component)) {
      throw new ReferenceError(
        `invalid reference "${input}": repository path component "${component}" may only hold a-z, 0-9 and separators (., _, __, -) between them`,
      );
    }
  }
}

/** Splits a name into registry and path the way docker does (`busybox` → docker.io + library/busybox). */
function splitDomain(name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  let registry: string;
  let repository: string;
  const first = slash === -1 ? '' : name.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    registry = DOCKER_HUB;
    repository = name;
  } else {
    registry = first;
    repository = name.slice(slash + 1);
  }
  if (registry === LEGACY_HUB) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  return { registry, repository };
}

/**
 * Parses and normalizes a reference as `docker pull` does. The result carries a tag only if one
 * was given; use {@link withDefaultTag} to get docker's implicit `:latest`.
 */
export function parseReference(input: string): Reference {
  if (input.length === 0) throw new ReferenceError('invalid reference: empty string');
  if (/\s/.test(input)) throw new ReferenceError(`invalid reference "${input}": contains white space`);
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (e) {
      throw new ReferenceError(`invalid reference "${input}": ${(e as DigestError).message}`);
    }
    rest = rest.slice(0, at);
    if (rest === '') throw new ReferenceError(`invalid reference "${input}": a digest needs a repository name before "@"`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) {
      throw new ReferenceError(
        tag.length > 128
          ? `invalid reference "${input}": tag is longer than 128 characters`
          : `invalid reference "${input}": tag "${tag}" may only hold letters, digits, "_", "." and "-" and must not start with "." or "-"`,
      );
    }
  }
  if (rest === '') throw new ReferenceError(`invalid reference "${input}": missing repository name`);
  if (/^[a-f0-9]{64}$/.test(rest)) throw new ReferenceError(`invalid reference "${input}": repository name must not be a 64-character hexadecimal string`);
  const { registry, repository } = splitDomain(rest);
  validateDomain(registry, input);
  validatePath(repository, input);
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH)
    throw new ReferenceError(`invalid reference "${input}": repository name is longer than ${MAX_NAME_LENGTH} characters`);
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** docker's implicit tag: a reference with neither tag nor digest means `:latest`. */
export function withDefaultTag(ref: Reference): Reference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref;
}

/** Parses and applies the default tag: `busybox` → `docker.io/library/busybox:latest`. */
export function parseNormalized(input: string): Reference {
  return withDefaultTag(parseReference(input));
}

/** `registry/repository`. */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The fully qualified string form: `docker.io/library/busybox:latest`. */
export function formatReference(ref: Reference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The short form docker prints: `busybox:latest`, `user/app:v1`, `localhost:5000/app:v1`. */
export function familiarReference(ref: Reference): string {
  let name = repositoryName(ref);
  if (ref.registry === DOCKER_HUB) name = ref.repository.startsWith('library/') ? ref.repository.slice(8) : ref.repository;
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
