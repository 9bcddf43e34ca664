import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MirrorSetting } from './hosts.js';
import { normalizeHostEntry } from './hosts.js';
import { parseToml, type TomlTable, type TomlValue } from './toml.js';

/** What tsbuild takes from containers-registries.conf(5) v2: mirrors and insecure flags per registry. */
export interface ContainersRegistries {
  mirrors: Record<string, MirrorSetting[]>;
  insecure: string[];
  blocked: string[];
}

/** podman's default location, overridable the way podman does it. */
export function defaultRegistriesConf(): string {
  return process.env.CONTAINERS_REGISTRIES_CONF ?? '/etc/containers/registries.conf';
}

function asString(v: TomlValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function tables(v: TomlValue | undefined): TomlTable[] {
  return Array.isArray(v) ? v.filter((t): t is TomlTable => typeof t === 'object' && t !== null && !Array.isArray(t)) : [];
}

/** Registries from one parsed file; `location` (or `prefix`) names the registry, docker.io normalized. */
export function registriesFromToml(doc: TomlTable, into: ContainersRegistries = { mirrors: {}, insecure: [], blocked: [] }): ContainersRegistries {
  for (const reg of tables(doc.registry)) {
    const location = asString(reg.location) ?? asString(reg.prefix);
    if (!location) continue;
    let name = normalizeHostEntry(location);
    if (name === 'index.docker.io' || name === 'registry-1.docker.io') name = 'docker.io';
    if (reg.insecure === true) into.insecure.push(name.split('/')[0]!);
    if (reg.blocked === true) into.blocked.push(name);
    for (const m of tables(reg.mirror)) {
      const loc = asString(m.location);
      if (!loc) continue;
      (into.mirrors[name] ??= []).push({ location: loc, ...(m.insecure === true ? { insecure: true } : {}) });
    }
  }
  return into;
}

/** Reads registries.conf and its drop-in directory (registries.conf.d/*.conf); missing files are fine. */
export function readRegistriesConf(file = defaultRegistriesConf()): ContainersRegistries {
  const result: ContainersRegistries = { mirrors: {}, insecure: [], blocked: [] };
  const files: string[] = [];
  if (existsSync(file)) files.push(file);
  const dropIns = `${file}.d`;
  if (existsSync(dropIns)) {
    for (const n of readdirSync(dropIns).filter((n) => n.endsWith('.conf')).sort()) files.push(join(dropIns, n));
  }
  for (const f of files) registriesFromToml(parseToml(readFileSync(f, 'utf8'), f), result);
  return result;
}
