/** Errors the registry client raises; each message is one sentence a person can act on. */
export class RegistryClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The image, tag or blob does not exist on any endpoint that was asked. */
export class NotFoundError extends RegistryClientError {
  constructor(
    readonly reference: string,
    detail?: string,
  ) {
    super(`not found: ${reference}${detail ? ` (${detail})` : ''}`);
  }
}

/** The registry refused the credentials (or wanted some and none were configured). */
export class UnauthorizedError extends RegistryClientError {
  constructor(
    readonly host: string,
    detail: string,
  ) {
    super(`unauthorized: ${detail}, run tsbuild login ${loginHost(host)}`);
  }
}

/** The registry denied the operation for the authenticated user. */
export class DeniedError extends RegistryClientError {
  constructor(
    readonly host: string,
    detail: string,
  ) {
    super(`denied: ${detail}; check that your account on ${host} may do this, or run tsbuild login ${loginHost(host)} with another account`);
  }
}

/** The host could not be reached or stopped answering (connect refused, DNS, timeouts). */
export class UnreachableError extends RegistryClientError {
  constructor(
    readonly host: string,
    detail: string,
  ) {
    super(`cannot reach registry ${host}: ${detail}`);
  }
}

/** TLS failed for a host not marked insecure. */
export class TlsError extends RegistryClientError {
  constructor(
    readonly host: string,
    detail: string,
  ) {
    super(
      `TLS error talking to ${host}: ${detail}; if this registry is meant to be used without verified TLS, pass --insecure-registry ${host} (or add it to insecure-registries in the tsbuild config)`,
    );
  }
}

/** Bytes from a registry did not hash to the digest they were fetched by. */
export class ContentDigestError extends RegistryClientError {
  constructor(
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`content from ${url} does not match its digest: expected ${expected}, got ${actual}; it was discarded`);
  }
}

/**
 * A blob download stopped short: the connection was cut, or the server answered a resume from the wrong
 * offset. Worth another attempt, which resumes with a Range request after the bytes already held.
 */
export class TruncatedDownloadError extends RegistryClientError {
  constructor(
    readonly url: string,
    readonly received: number,
    readonly expected: number,
    detail?: string,
  ) {
    super(`${url} ended after ${received} of ${expected} bytes${detail ? ` (${detail})` : ''}`);
  }
}

/** A containers-registries.conf file that is not valid TOML. */
export class RegistriesConfError extends RegistryClientError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    detail: string,
  ) {
    super(`${file}:${line}:${column}: ${detail}; fix the file, or set CONTAINERS_REGISTRIES_CONF to another one`);
  }
}

/** Any other unexpected HTTP answer. */
export class HttpStatusError extends RegistryClientError {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly url: string,
    detail: string,
  ) {
    super(`${method} ${url} failed with HTTP ${status}${detail ? `: ${detail}` : ''}`);
  }
}

/** Docker's name for Docker Hub in logins and credentials. */
export function loginHost(host: string): string {
  return host === 'registry-1.docker.io' || host === 'index.docker.io' ? 'docker.io' : host;
}

/** Errors worth another attempt on the same endpoint (connection drops, 5xx, 429, a cut download). */
export function isTransient(e: unknown): boolean {
  if (e instanceof HttpStatusError) return e.status === 429 || e.status >= 500;
  if (e instanceof TruncatedDownloadError) return true;
  const code = (e as NodeJS.ErrnoException)?.code;
  return (
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ETIMEDOUT' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'IDLE_TIMEOUT' ||
    code === 'ECONNABORTED'
  );
}
