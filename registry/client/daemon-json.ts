import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { MirrorSetting } from './hosts.js';

/** dockerd's config file on Linux (`dockerd --config-file` default for a rootful daemon). */
export const DOCKER_DAEMON_JSON = '/etc/docker/daemon.json';

/** Points tsbuild at another daemon.json (rootless dockerd's `~/.config/docker/daemon.json`, a test's file); `/dev/null` reads none. */
export const DOCKER_DAEMON_JSON_ENV = 'TSBUILD_DOCKER_DAEMON_JSON';

/** The daemon.json to read, and whether someone named it (a named file that is missing deserves a warning; the default does not). */
export function defaultDockerDaemonJson(): { file: string; named: boolean } {
  const fromEnv = process.env[DOCKER_DAEMON_JSON_ENV];
  return fromEnv ? { file: fromEnv, named: true } : { file: DOCKER_DAEMON_JSON, named: false };
}

/** What tsbuild takes from daemon.json: docker.io mirrors and insecure registries. Every other dockerd key is ignored. */
export interface DaemonJsonRegistries {
  /** `registry-mirrors`, in the file's order: mirrors of docker.io only, as in dockerd. */
  mirrors: MirrorSetting[];
  /** `insecure-registries`: host, host:port or CIDR. */
  insecure: string[];
  /** One line per problem, naming the file and key; what a warning names was left out, the rest still applies. */
  warnings: string[];
}

/**
 * moby registry.ValidateMirror (v28.3): an http or https URL without query, fragment or credentials. A
 * path is accepted as v28 does (20.10 refused it); tsbuild uses it as the mirror's repository prefix.
 * Returns why the entry is refused, or undefined.
 */
export function mirrorProblem(value: string): string | undefined {
  const scheme = /^([^:/]*):\/\//.exec(value);
  if (!scheme || !scheme[1]) return 'no scheme: use http:// or https://';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'not a valid URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `unsupported scheme "${scheme[1]}": use http:// or https://`;
  if (!url.host) return 'no host';
  if (url.search || url.hash) return 'a query or fragment is not allowed';
  if (url.username || url.password) return 'a username or password is not allowed in a mirror URL';
  return undefined;
}

// distribution/reference's DomainRegexp, anchored: what moby's validateHostPort accepts besides IP addresses.
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainAndPort = new RegExp(`^(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);

/**
 * moby registry.loadInsecureRegistries: an `http://` or `https://` prefix is dropped (dockerd only logs
 * it), any other scheme refused; then a CIDR (net.ParseCIDR) or a host[:port] (validateHostPort: a
 * domain or IP address, port 0–65535); ValidateIndexName refuses a leading or trailing hyphen.
 * Returns the entry as tsbuild keeps it, or why it is refused.
 */
export function insecureRegistryEntry(value: string): { entry: string } | { problem: string } {
  let entry = value;
  if (/^https?:\/\//i.test(entry)) entry = entry.replace(/^https?:\/\//i, '');
  else if (entry.includes('://')) return { problem: 'must not contain a scheme other than http:// or https://' };
  if (entry.startsWith('-') || entry.endsWith('-')) return { problem: 'cannot begin or end with a hyphen' };
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
  if (cidr) {
    const family = isIP(cidr[1]!);
    if (family && Number(cidr[2]) <= (family === 4 ? 32 : 128)) return { entry };
    return { problem: 'is not a valid CIDR such as 10.0.0.0/8' };
  }
  // net.SplitHostPort: "host:port" or "[v6]:port"; a bare IPv6 address has no port.
  const split = /^\[([^\]]+)\]:(\d*)$|^([^:]*):(\d*)$/.exec(entry);
  const host = split ? (split[1] ?? split[3]!) : entry;
  const port = split ? (split[2] ?? split[4]!) : undefined;
  if (!domainAndPort.test(entry) && !isIP(host.replace(/^\[|\]$/g, ''))) return { problem: 'is not a host, host:port or CIDR' };
  if (port !== undefined && !(/^\d+$/.test(port) && Number(port) <= 65535)) return { problem: `has an invalid port "${port}"` };
  return { entry };
}

/** Calls `each` for the strings of a list key in file order; anything else becomes a warning. */
function eachString(value: unknown, key: string, file: string, warnings: string[], each: (value: string, index: number) => void): void {
  // dockerd decodes a null list as an empty one.
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) {
    warnings.push(`${file}: ${key} must be a list of strings, not ${JSON.stringify(value)}; it is ignored`);
    return;
  }
  value.forEach((v: unknown, index) => {
    if (typeof v === 'string') each(v.trim(), index);
    else warnings.push(`${file}: ${key}[${index}]: expected a string, not ${JSON.stringify(v)}; the entry is ignored`);
  });
}

/** The registry settings in daemon.json's text. Never throws: problems become warnings. */
export function daemonJsonFromText(text: string, file: string): DaemonJsonRegistries {
  const result: DaemonJsonRegistries = { mirrors: [], insecure: [], warnings: [] };
  // dockerd skips a UTF-8 byte order mark and takes an empty file as no settings.
  const body = text.replace(/^\uFEFF/, '').trim();
  if (!body) return result;
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (e) {
    result.warnings.push(`${file}: invalid JSON (${(e as Error).message}); its registry-mirrors and insecure-registries are ignored`);
    return result;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    result.warnings.push(`${file}: expected a JSON object; its registry-mirrors and insecure-registries are ignored`);
    return result;
  }
  const settings = doc as Record<string, unknown>;
  eachString(settings['registry-mirrors'], 'registry-mirrors', file, result.warnings, (value, index) => {
    const problem = mirrorProblem(value);
    if (problem) result.warnings.push(`${file}: registry-mirrors[${index}]: invalid mirror "${value}": ${problem}; the entry is ignored`);
    else result.mirrors.push({ location: value.replace(/\/+$/, '') });
  });
  eachString(settings['insecure-registries'], 'insecure-registries', file, result.warnings, (value, index) => {
    const checked = insecureRegistryEntry(value);
    if ('problem' in checked) result.warnings.push(`${file}: insecure-registries[${index}]: "${value}" ${checked.problem}; the entry is ignored`);
    else result.insecure.push(checked.entry);
  });
  return result;
}

/**
 * Reads daemon.json for its registry settings. dockerd refuses to start over a bad file; tsbuild
 * warns and goes on, since the file is dockerd's and a build should not fail over it. A missing file
 * is silent unless it was named (`named`: by the environment or a caller).
 */
export function readDaemonJson(file: string, { named = false } = {}): DaemonJsonRegistries {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && !named) return { mirrors: [], insecure: [], warnings: [] };
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    return { mirrors: [], insecure: [], warnings: [`cannot read ${file} (${why}); its registry-mirrors and insecure-registries are ignored`] };
  }
  return daemonJsonFromText(text, file);
}
