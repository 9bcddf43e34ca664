/**
 * A function of a module that is loaded the first time the function is called: for parts most runs never
 * use (archives, compression, cache import and export), whose loading would slow every start. The import
 * stays a literal `import('./x.js')` in the caller, so the bundler (scripts/bundle-cli.mjs) splits the
 * module into a chunk of its own. Shape: `loadOnUse(() => import('./x.js'), 'name')` has the type of
 * `x.name`, which must return a promise.
 */
export function loadOnUse<M, K extends keyof M>(load: () => Promise<M>, name: K): M[K] {
  const call = async (...args: unknown[]): Promise<unknown> => ((await load())[name] as (...a: unknown[]) => Promise<unknown>)(...args);
  return call as M[K];
}
