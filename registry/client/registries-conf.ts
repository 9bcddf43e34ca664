import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, TomlError, type TomlTableWithoutBigInt, type TomlValueWithoutBigInt } from 'smol-toml';
import { RegistriesConfError } from './errors.js';
import type { MirrorSetting } from './hosts.js';
import { normalizeHostEntry } from './hosts.js';

/** What tsbuild takes from containers-registries.conf(5) v2: mirrors and insecure flags per registry. */
export interface ContainersRegistries {
  mirrors: Record<string, MirrorSetting[]>;
  insecure: string[];
  blocked: string[];
}

type TomlTable = TomlTableWithoutBigInt;
type TomlValue = TomlValueWithoutBigInt;

/** podman's default location, overridable the way podman does it. */
export function defaultRegistriesConf(): string {
  return process.env.CONTAINERS_REGISTRIES_CONF ?? '/etc/containers/registries.conf';
}

/**
 * Parses the text of one registries.conf file as TOML 1.0 (smol-toml). Throws RegistriesConfError naming
 * `file`, the line and the column for anything TOML refuses (a key or table defined twice, bad syntax).
 */
export function parseRegistriesConf(text: string, file: string): TomlTable {
  try {
    return parse(text, { unsafeKeyBehaviour: 'drop' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const detail = e.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    throw new RegistriesConfError(file, e.line, e.column, detail);
  }
}

function asString(v: TomlValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function tables(v: TomlValue | undefined): TomlTable[] {
  return Array.isArray(v) ? v.filter((t): t is TomlTable => typeof t === 'object' && t !== null && !Array.isArray(t) && !(t instanceof Date)) : [];
}

/** Registries from one parsed file; `location` (or `prefix`) names the registry, docker.io normalized. */
function registriesFromToml(doc: TomlTable, into: ContainersRegistries): ContainersRegistries {
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

/**
 * Reads registries.conf and its drop-in directory (registries.conf.d/*.conf, in name order); missing
 * files are fine. Throws RegistriesConfError for a file that is not valid TOML.
 */
export function readRegistriesConf(file = defaultRegistriesConf()): ContainersRegistries {
  const result: ContainersRegistries = { mirrors: {}, insecure: [], blocked: [] };
  const files: string[] = [];
  if (existsSync(file)) files.push(file);
  const dropIns = `${file}.d`;
  if (existsSync(dropIns)) {
    for (const n of readdirSync(dropIns)
      .filter((n) => n.endsWith('.conf'))
      .sort())
      files.push(join(dropIns, n));
  }
  for (const f of files) registriesFromToml(parseRegistriesConf(readFileSync(f, 'utf8'), f), result);
  return result;
}
