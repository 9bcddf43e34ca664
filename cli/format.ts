// One way to print sizes for the build's progress and the CLI's tables (decimal units, as docker).
export { formatSize } from '../builder/progress/index.js';

/** docker's CreatedSince: go-units' HumanDuration followed by " ago". */
export function formatAge(iso: string, now = Date.now()): string {
  const ms = now - Date.parse(iso);
  if (Number.isNaN(ms)) return '';
  const seconds = Math.floor(Math.max(0, ms) / 1000);
  const minutes = Math.floor(seconds / 60);
  const hours = Math.round(seconds / 3600);
  let d: string;
  if (seconds < 1) d = 'Less than a second';
  else if (seconds === 1) d = '1 second';
  else if (seconds < 60) d = `${seconds} seconds`;
  else if (minutes === 1) d = 'About a minute';
  else if (minutes < 60) d = `${minutes} minutes`;
  else if (hours === 1) d = 'About an hour';
  else if (hours < 48) d = `${hours} hours`;
  else if (hours < 24 * 7 * 2) d = `${Math.floor(hours / 24)} days`;
  else if (hours < 24 * 30 * 2) d = `${Math.floor(hours / 24 / 7)} weeks`;
  else if (hours < 24 * 365 * 2) d = `${Math.floor(hours / 24 / 30)} months`;
  else d = `${Math.floor(hours / 24 / 365)} years`;
  return `${d} ago`;
}

/** Left-aligned columns separated by three spaces, like docker's tables. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
