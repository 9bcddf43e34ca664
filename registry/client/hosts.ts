import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { DOCKER_HUB } from '../../oci/index.js';

/** A mirror of a registry: a URL (`http://127.0.0.1:5000`) or a host with optional port and path prefix. */
export interface MirrorSetting {
  location: string;
  /** Plain HTTP or unverified TLS for this mirror (also implied by insecure-registries). */
  insecure?: boolean;
}

/** Which mirrors and which insecure hosts to use: docker's daemon.json settings plus registries.conf. */
export interface RegistrySettings {
  /** Mirrors per registry host (`docker.io` for docker's registry-mirrors), tried in order before the registry itself. */
  mirrors: Record<string, MirrorSetting[]>;
  /** Hosts (`host`, `host:port`) and CIDRs (`10.0.0.0/8`) spoken to over plain HTTP or unverified TLS. */
  insecureRegistries: string[];
  /** Treat 127.0.0.0/8, ::1 and localhost as insecure, as docker does (default true). */
  insecureLoopback?: boolean;
}

export function emptySettings(): RegistrySettings {
  return { mirrors: {}, insecureRegistries: [] };
}

/** Where requests for one registry go: a mirror or the registry itself. */
export interface Endpoint {
  /** host[:port] as used for credentials and messages. */
  host: string;
  /** `https` or `http` when known; `auto` tries verified-off HTTPS first and falls back to HTTP (insecure hosts). */
  scheme: 'https' | 'http' | 'auto';
  verifyTls: boolean;
  /** A namespace the mirror keeps the upstream's repositories under (`mirror.example/dockerhub`). */
  pathPrefix: string;
  mirror: boolean;
  /** The registry the endpoint stands in for (docker.io for a Docker Hub mirror). */
  registry: string;
}

/** Docker Hub's API host: `docker.io` names are served from here. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

/** `http://h:1/` → `h:1`; `HOST:PORT` stays. */
export function normalizeHostEntry(entry: string): string {
  return entry
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/+$/, '');
}

function splitHostPort(host: string): { hostname: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (v6) return { hostname: v6[1]!, ...(v6[2] ? { port: v6[2] } : {}) };
  const m = /^(.*?)(?::(\d+))?$/.exec(host)!;
  return { hostname: m[1]!, ...(m[2] ? { port: m[2] } : {}) };
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Decides, per host, whether TLS is required: docker's insecure-registries semantics. */
export class InsecureMatcher {
  private readonly names = new Set<string>();
  private readonly cidrs = new BlockList();
  private hasCidrs = false;

  constructor(private readonly settings: RegistrySettings) {
    for (const raw of settings.insecureRegistries) {
      const entry = normalizeHostEntry(raw);
      const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
      if (cidr && isIP(cidr[1]!)) {
        this.cidrs.addSubnet(cidr[1]!, Number(cidr[2]), isIP(cidr[1]!) === 6 ? 'ipv6' : 'ipv4');
        this.hasCidrs = true;
      } else this.names.add(entry.toLowerCase());
    }
  }

  /** `host` or `host:port`; an entry without port covers every port of that host. */
  async isInsecure(host: string): Promise<boolean> {
    const lower = host.toLowerCase();
    const { hostname } = splitHostPort(lower);
    if (this.names.has(lower) || this.names.has(hostname)) return true;
    const family = isIP(hostname);
    if (this.settings.insecureLoopback !== false) {
      if (hostname === 'localhost') return true;
      if (family && loopback.check(hostname, family === 6 ? 'ipv6' : 'ipv4')) return true;
    }
    if (!this.hasCidrs) return false;
    let addresses: { address: string; family: number }[];
    try {
      addresses = family ? [{ address: hostname, family }] : await lookup(hostname, { all: true });
    } catch {
      return false;
    }
    return addresses.some((a) => this.cidrs.check(a.address, a.family === 6 ? 'ipv6' : 'ipv4'));
  }
}

async function mirrorEndpoint(mirror: MirrorSetting, registry: string, insecure: InsecureMatcher): Promise<Endpoint> {
  const explicit = /^(https?):\/\//i.exec(mirror.location);
  const rest = normalizeHostEntry(mirror.location);
  const slash = rest.indexOf('/');
  const host = slash === -1 ? rest : rest.slice(0, slash);
  const pathPrefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/^v2\/?/, '');
  const isInsecure = mirror.insecure === true || (await insecure.isInsecure(host));
  const scheme = explicit ? (explicit[1]!.toLowerCase() as 'http' | 'https') : isInsecure ? 'auto' : 'https';
  return { host, scheme, verifyTls: !isInsecure, pathPrefix, mirror: true, registry };
}

/** The endpoints to try for a registry, in order: its mirrors, then the registry itself. */
export async function endpointsFor(settings: RegistrySettings, registry: string, options: { mirrors?: boolean } = {}): Promise<Endpoint[]> {
  const insecure = new InsecureMatcher(settings);
  const out: Endpoint[] = [];
  if (options.mirrors !== false) {
    const seen = new Set<string>();
    for (const m of settings.mirrors[registry] ?? []) {
      const key = normalizeHostEntry(m.location);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(await mirrorEndpoint(m, registry, insecure));
    }
  }
  const host = registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
  const isInsecure = await insecure.isInsecure(registry);
  out.push({ host, scheme: isInsecure ? 'auto' : 'https', verifyTls: !isInsecure, pathPrefix: '', mirror: false, registry });
  return out;
}

/** The repository path on an endpoint (a mirror may keep repositories under a prefix). */
export function endpointRepository(endpoint: Endpoint, repository: string): string {
  return endpoint.pathPrefix ? `${endpoint.pathPrefix}/${repository}` : repository;
}

export function describeEndpoint(e: Endpoint): string {
  return `${e.mirror ? 'mirror ' : ''}${e.scheme === 'auto' ? '' : `${e.scheme}://`}${e.host}${e.pathPrefix ? `/${e.pathPrefix}` : ''}`;
}
