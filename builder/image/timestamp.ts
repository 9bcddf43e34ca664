/**
 * The time recorded in configs, history and (clamped) in layers: SOURCE_DATE_EPOCH when set, so two
 * builds of the same inputs give the same digests; otherwise now.
 */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new Error(`SOURCE_DATE_EPOCH="${raw}" is not a whole number of seconds since 1970; unset it or fix it`);
  return Number(raw);
}

export function buildTimestamp(env: NodeJS.ProcessEnv = process.env): string {
  const epoch = sourceDateEpoch(env);
  return (epoch === undefined ? new Date() : new Date(epoch * 1000)).toISOString().replace(/\.000Z$/, 'Z');
}
