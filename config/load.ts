import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function formatPath(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('') || '(top level)';
}

/** Validates parsed config data against a schema; the first problem becomes a one-line error naming its key path. */
export function validateConfig<S extends z.ZodType>(schema: S, data: unknown, source: string): z.infer<S> {
  const result = schema.safeParse(data ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    const where = issue.path.length ? `${formatPath(issue.path)}.` : '';
    throw new ConfigError(`${source}: unknown key ${keys.map((k) => `"${where}${k}"`).join(', ')}`);
  }
  throw new ConfigError(`${source}: ${formatPath(issue.path)}: ${issue.message}`);
}

/** Reads a YAML (or JSON) config file and validates it. A missing optional file yields the defaults. */
export function loadConfigFile<S extends z.ZodType>(schema: S, file: string, { optional = false } = {}): z.infer<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return validateConfig(schema, {}, file);
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return validateConfig(schema, data, file);
}
