import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { makeDirs } from '../../store/index.js';

/** What a registry login yields: a user and password, or an OAuth2 refresh (identity) token. */
export interface Credentials {
  username?: string;
  password?: string;
  /** docker's `identitytoken`: exchanged for access tokens with grant_type=refresh_token. */
  identityToken?: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  [key: string]: unknown;
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** Docker Hub's historic key in config.json and credential helpers. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** `$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`. */
export function dockerConfigFile(): string {
  return join(process.env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** The key docker uses for a registry host (docker.io's legacy URL, else host[:port]). */
export function authKey(host: string): string {
  const h = normalizeKey(host);
  return h === 'docker.io' || h === 'index.docker.io' || h === 'registry-1.docker.io' ? DOCKER_HUB_AUTH_KEY : h;
}

/** `https://host:5000/v1/` → `host:5000`, as docker compares keys. */
function normalizeKey(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
}

function sameHost(key: string, host: string): boolean {
  const a = normalizeKey(key);
  const b = normalizeKey(host);
  const hub = (x: string) => x === 'docker.io' || x === 'index.docker.io' || x === 'registry-1.docker.io';
  return a === b || (hub(a) && hub(b));
}

function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) =>
      reject(new Error(`credential helper docker-credential-${helper} could not be run: ${e.message}; install it or remove it from ${dockerConfigFile()}`)),
    );
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** docker's config.json: reads credentials (inline or via credential helpers) and writes logins the way docker does. */
export class DockerCredentials {
  constructor(readonly file: string = dockerConfigFile()) {}

  private async read(): Promise<ConfigFile> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    try {
      return text.trim() ? (JSON.parse(text) as ConfigFile) : {};
    } catch (e) {
      throw new Error(`${this.file} is not valid JSON (${(e as Error).message}); fix or remove it`);
    }
  }

  private async write(config: ConfigFile): Promise<void> {
    await makeDirs(dirname(this.file), 0o700);
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(config, null, '\t') + '\n', { mode: 0o600 });
    await fs.rename(tmp, this.file);
  }

  private helperFor(config: ConfigFile, host: string): string | undefined {
    for (const [key, helper] of Object.entries(config.credHelpers ?? {})) if (sameHost(key, host)) return helper;
    return config.credsStore || undefined;
  }

  /** Credentials for a registry host, or undefined for anonymous access. */
  async get(host: string): Promise<Credentials | undefined> {
    const config = await this.read();
    const helper = this.helperFor(config, host);
    if (helper) {
      const fromHelper = await this.fromHelper(helper, host);
      if (fromHelper) return fromHelper;
    }
    const entries = Object.entries(config.auths ?? {});
    const entry = entries.find(([k]) => k === authKey(host))?.[1] ?? entries.find(([k]) => sameHost(k, host))?.[1];
    if (!entry) return undefined;
    const creds: Credentials = {};
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon === -1) throw new Error(`${this.file}: the auth entry for ${host} is not base64 of user:password; run tsbuild login ${host} again`);
      creds.username = decoded.slice(0, colon);
      creds.password = decoded.slice(colon + 1);
    } else if (entry.username) {
      creds.username = entry.username;
      creds.password = entry.password ?? '';
    }
    if (entry.identitytoken) creds.identityToken = entry.identitytoken;
    return creds.username !== undefined || creds.identityToken ? creds : undefined;
  }

  private async fromHelper(helper: string, host: string): Promise<Credentials | undefined> {
    const result = await runHelper(helper, 'get', authKey(host));
    if (result.code !== 0) {
      if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined;
      throw new Error(`credential helper docker-credential-${helper} failed for ${host}: ${(result.stderr || result.stdout).trim().split('\n')[0]}`);
    }
    const parsed = JSON.parse(result.stdout) as { Username?: string; Secret?: string };
    if (parsed.Username === '<token>') return { identityToken: parsed.Secret ?? '' };
    return { username: parsed.Username ?? '', password: parsed.Secret ?? '' };
  }

  /** Saves a login: through the configured credential helper, else inline as base64 in `auths`. */
  async store(host: string, creds: Credentials): Promise<void> {
    const config = await this.read();
    const key = authKey(host);
    const helper = this.helperFor(config, host);
    if (helper) {
      const secret = creds.identityToken ?? creds.password ?? '';
      const username = creds.identityToken ? '<token>' : (creds.username ?? '');
      const result = await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: username, Secret: secret }));
      if (result.code !== 0)
        throw new Error(`credential helper docker-credential-${helper} could not store the login for ${host}: ${(result.stderr || result.stdout).trim()}`);
      // docker leaves an empty entry so that `docker info` lists the login.
      config.auths = { ...config.auths, [key]: {} };
    } else {
      const entry: AuthEntry = {};
      if (creds.username !== undefined) entry.auth = Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64');
      if (creds.identityToken) entry.identitytoken = creds.identityToken;
      config.auths = { ...config.auths, [key]: entry };
    }
    await this.write(config);
  }

  /** Removes a login; returns whether one existed. */
  async erase(host: string): Promise<boolean> {
    const config = await this.read();
    let found = false;
    const helper = this.helperFor(config, host);
    if (helper) {
      const result = await runHelper(helper, 'erase', authKey(host));
      found = result.code === 0;
    }
    for (const key of Object.keys(config.auths ?? {})) {
      if (sameHost(key, host)) {
        delete config.auths![key];
        found = true;
      }
    }
    if (found) await this.write(config);
    return found;
  }
}
