/**
 * The reason in a Node file-system error without its code and call:
 * `ENOENT: no such file or directory, open '/x'` → `no such file or directory`, for one-line errors
 * that name the path the person gave (not a temporary name it was written through).
 */
export function errnoReason(e: unknown): string {
  return (e as Error).message.replace(/^[A-Z]+: /, '').replace(/, [a-z]+ '.*$/s, '');
}
