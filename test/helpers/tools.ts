import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import test, { type TestFn } from 'ava';

const cache = new Map<string, string | undefined>();

/** Absolute path of a tool, or undefined. */
export function findTool(name: string): string | undefined {
  if (!cache.has(name)) {
    let found: string | undefined;
    for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin']) {
      if (existsSync(`${dir}/${name}`)) {
        found = `${dir}/${name}`;
        break;
      }
    }
    cache.set(name, found);
  }
  return cache.get(name);
}

export function dockerAvailable(): boolean {
  try {
    execFileSync('/usr/bin/docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * `test` when every tool is there; otherwise `test.skip` with a reason printed once — except under CI,
 * where a missing tool must fail loudly rather than skip.
 */
export function testWith(tools: string[]): TestFn {
  const missing = tools.filter((t) => (t === 'dockerd' ? !dockerAvailable() : !findTool(t)));
  if (missing.length === 0) return test;
  if (process.env.CI) {
    const failing = ((title: string) =>
      test(title, (t) => {
        t.fail(`required tool(s) missing under CI: ${missing.join(', ')} (run scripts/setup.sh and scripts/services.sh)`);
      })) as unknown as TestFn;
    return Object.assign(failing, {
      serial: failing,
      skip: test.skip,
      only: failing,
      before: test.before,
      after: test.after,
      beforeEach: test.beforeEach,
      afterEach: test.afterEach,
      'after.always': test.after.always,
    }) as TestFn;
  }
  console.warn(`skipping tests that need: ${missing.join(', ')} (install with scripts/setup.sh)`);
  return Object.assign(test.skip, {
    serial: test.skip,
    skip: test.skip,
    before: () => undefined,
    after: Object.assign(() => undefined, { always: () => undefined }),
    beforeEach: () => undefined,
    afterEach: () => undefined,
  }) as unknown as TestFn;
}
