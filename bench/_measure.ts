import { spawnSync } from 'node:child_process';

/** Wall-clock seconds of an async function. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Wall-clock seconds of a shell command (fails loudly). */
export function timeCommand(cmd: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr?.toString().trim()}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export function mbps(bytes: number, seconds: number): string {
  return `${(bytes / 1e6 / seconds).toFixed(0)} MB/s`;
}

/** Drops the page cache so reads hit the disk the same way for every contender (root only; ignored elsewhere). */
export function dropCaches(): void {
  spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
}

export function row(cols: (string | number)[], widths: number[]): string {
  return cols.map((c, i) => String(c).padEnd(widths[i] ?? 12)).join(' ');
}
