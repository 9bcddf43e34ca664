import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, tsbuildConfigSchema } from '../config/index.js';
import { tempDir } from './helpers/temp.js';

test('valid config loads with defaults', (t) => {
  const file = join(tempDir(), 'c.yaml');
  writeFileSync(file, 'registry-mirrors:\n  - http://127.0.0.1:5001\n');
  const c = loadConfigFile(tsbuildConfigSchema, file);
  t.deepEqual(c['registry-mirrors'], ['http://127.0.0.1:5001']);
  t.deepEqual(c['insecure-registries'], []);
});

test('unknown keys, wrong types, bad YAML and missing files are one-line errors naming the key', (t) => {
  const dir = tempDir();
  const write = (name: string, body: string) => {
    writeFileSync(join(dir, name), body);
    return join(dir, name);
  };
  const unknown = t.throws(() => loadConfigFile(tsbuildConfigSchema, write('a.yaml', 'registry-mirror: []\n')), { instanceOf: ConfigError });
  t.regex(unknown!.message, /a\.yaml: unknown key "registry-mirror"/);
  const wrongType = t.throws(() => loadConfigFile(tsbuildConfigSchema, write('b.yaml', 'insecure-registries: 5\n')), { instanceOf: ConfigError });
  t.regex(wrongType!.message, /b\.yaml: insecure-registries: /);
  const nested = t.throws(() => loadConfigFile(tsbuildConfigSchema, write('c.yaml', 'registry-mirrors: [notaurl]\n')), { instanceOf: ConfigError });
  t.regex(nested!.message, /c\.yaml: registry-mirrors\[0\]: /);
  const yaml = t.throws(() => loadConfigFile(tsbuildConfigSchema, write('d.yaml', 'a: [\n')), { instanceOf: ConfigError });
  t.regex(yaml!.message, /d\.yaml: invalid YAML/);
  t.throws(() => loadConfigFile(tsbuildConfigSchema, join(dir, 'missing.yaml')), { message: /cannot read config file/ });
  t.deepEqual(loadConfigFile(tsbuildConfigSchema, join(dir, 'missing.yaml'), { optional: true })['registry-mirrors'], []);
  for (const e of [unknown, wrongType, nested, yaml]) t.false(e!.message.includes('\n'));
});
