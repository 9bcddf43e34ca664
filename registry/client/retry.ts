import { header, type HttpResponse } from './transport.js';

export interface RetryPolicy {
  /** Further attempts after the first. */
  retries: number;
  /** First back-off delay; doubles each attempt, with jitter. */
  baseDelayMs: number;
  /** The longest a Retry-After is honoured; longer answers fail instead of stalling a pull for hours. */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { retries: 4, baseDelayMs: 200, maxRetryAfterMs: 60_000 };

export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const base = policy.baseDelayMs * 2 ** attempt;
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** A 429/503 Retry-After (seconds or an HTTP date) in milliseconds, or undefined. */
export function retryAfterMs(res: HttpResponse): number | undefined {
  const v = header(res, 'retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
