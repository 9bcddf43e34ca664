/**
 * The claim protocol of garbage collection (gc-claims.ts) for registry replicas sharing one S3 bucket and
 * one Redis. On S3 a rename is a copy and a delete, so a claim cannot move the blob: the blob stays where
 * it is, and the claim is an entry in Redis that the GC and the writers change only through atomic
 * scripts, which Redis runs one at a time:
 *
 *   `<prefix>gc:lock`    the GC holding the store: a token, SET NX with an expiry the holder renews; a GC
 *                        that died loses it within LOCK_MS, and its claims mean nothing after that.
 *   `<prefix>gc:claims`  digest → `c:<token>` (claimed: any writer may take it back) or `d:<token>`
 *                        (being deleted: decided, the GC deletes the object, then the entry goes).
 *   `<prefix>gc:wanted`  digest → when a writer last confirmed it (ms, Redis's clock). A GC never claims a
 *                        blob confirmed at or after its cutoff, which also covers links an S3 listing may
 *                        not show yet: the GC relies on listings only for what is older than the grace period.
 *
 * The clocks of the replicas, of RGW (blob mtimes) and of Redis must agree to well within the grace period.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Digest } from '../oci/index.js';
import type { StorageDriver } from './driver/storage-driver.js';
import { PathNotFoundError } from './errors.js';
import { GcLockedError, type BlobClaims, type GcLock } from './gc-claims.js';
import { blobPath } from './layout.js';

/** The lock lapses this long after its holder stops renewing it (a SIGKILLed GC blocks the next for at most this). */
export const LOCK_MS = 30_000;
const RENEW_MS = LOCK_MS / 3;
/** A writer waits at most this long for a GC's delete of the blob it wants (one DeleteObject; the lock bounds it too). */
const DELETE_WAIT_MS = 2 * LOCK_MS;

/** KEYS: claims, lock, wanted. ARGV: digest. 1: confirmed (a claim taken back); 0: being deleted by the live GC. */
const CONFIRM = `
local s = redis.call('HGET', KEYS[1], ARGV[1])
if s then
  if string.sub(s, 1, 2) == 'd:' and redis.call('GET', KEYS[2]) == string.sub(s, 3) then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
return 1`;

/** KEYS: claims, lock, wanted. ARGV: digest, token, cutoff. 1: claimed; 0: wanted or claimed already; -1: the lock is not ours. */
const CLAIM = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
local w = redis.call('ZSCORE', KEYS[3], ARGV[1])
if w and tonumber(w) >= tonumber(ARGV[3]) then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'c:' .. ARGV[2])
return 1`;

/** KEYS: claims, lock. ARGV: digest, token. 1: decided (now being deleted); 0: a writer took it back; -1: the lock is not ours. */
const DECIDE = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'c:' .. ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'd:' .. ARGV[2])
return 1`;

/** KEYS: claims. ARGV: digest, expected value. Deletes the entry only when it is still the expected one. */
const DROP = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end`;

/** KEYS: lock. ARGV: token, ms. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** Claims in Redis for a store on S3 shared by replicas (see the module comment). */
export class SharedClaims implements BlobClaims {
  private readonly claimsKey: string;
  private readonly lockKey: string;
  private readonly wantedKey: string;
  /** The token of the lock this process holds, while it does. */
  private token: string | undefined;

  constructor(
    private readonly driver: StorageDriver,
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.claimsKey = `${prefix}gc:claims`;
    this.lockKey = `${prefix}gc:lock`;
    this.wantedKey = `${prefix}gc:wanted`;
  }

  async lock(): Promise<GcLock> {
    const token = `${hostname()}/${process.pid}/${new Date().toISOString()}/${randomUUID().slice(0, 8)}`;
    if ((await this.redis.set(this.lockKey, token, 'PX', LOCK_MS, 'NX')) !== 'OK') {
      const holder = (await this.redis.get(this.lockKey)) ?? 'a replica whose lock just lapsed';
      throw new GcLockedError(holder.split('/').slice(0, 3).join(' '));
    }
    this.token = token;
    let lost = false;
    const renew = setInterval(() => {
      this.redis.eval(RENEW, 1, this.lockKey, token, String(LOCK_MS)).then(
        (ok) => {
          if (ok !== 1) lost = true;
        },
        () => undefined, // Redis unreachable for a moment: the next renewal tries again, the scripts check the lock
      );
    }, RENEW_MS);
    renew.unref();
    return {
      check: () => {
        if (lost) throw new Error(`the garbage collection lost its lock in Redis (${this.lockKey}) and stopped; run it again`);
      },
      release: async () => {
        clearInterval(renew);
        if (this.token === token) this.token = undefined;
        await this.redis.eval(UNLOCK, 1, this.lockKey, token);
      },
    };
  }

  private held(): string {
    if (!this.token) throw new Error('a GC claims blobs only while holding the store GC lock (SharedClaims.lock)');
    return this.token;
  }

  async claim(digest: Digest, cutoff: number): Promise<boolean> {
    const r = (await this.redis.eval(CLAIM, 3, this.claimsKey, this.lockKey, this.wantedKey, digest, this.held(), String(cutoff))) as number;
    if (r === -1) throw new Error(`the garbage collection lost its lock in Redis (${this.lockKey}) and stopped; run it again`);
    return r === 1;
  }

  async restore(digest: Digest): Promise<boolean> {
    return ((await this.redis.eval(DROP, 1, this.claimsKey, digest, `c:${this.held()}`)) as number) === 1;
  }

  async claimedInfo(digest: Digest): Promise<{ size: number; modTime: number } | undefined> {
    if ((await this.redis.hget(this.claimsKey, digest)) !== `c:${this.held()}`) return undefined;
    try {
      const s = await this.driver.stat(blobPath(digest));
      return { size: s.size, modTime: s.modTime.getTime() };
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  async deleteClaimed(digest: Digest): Promise<boolean> {
    const token = this.held();
    const r = (await this.redis.eval(DECIDE, 2, this.claimsKey, this.lockKey, digest, token)) as number;
    if (r === -1) throw new Error(`the garbage collection lost its lock in Redis (${this.lockKey}) and stopped; run it again`);
    if (r === 0) return false;
    try {
      await this.driver.delete(blobPath(digest));
    } finally {
      await this.redis.eval(DROP, 1, this.claimsKey, digest, `d:${token}`);
    }
    return true;
  }

  /**
   * Clears the claims of GCs that died (their blobs stay), and forgets confirmations older than the
   * oldest cutoff a GC may still use (`keepWantedSince`, ms).
   */
  async restoreAll(keepWantedSince = Date.now() - 24 * 3_600_000): Promise<number> {
    const token = this.held();
    const claims = await this.redis.hgetall(this.claimsKey);
    let n = 0;
    for (const [digest, value] of Object.entries(claims)) {
      if (value.slice(2) === token) continue;
      n += (await this.redis.eval(DROP, 1, this.claimsKey, digest, value)) as number;
    }
    await this.redis.zremrangebyscore(this.wantedKey, '-inf', `(${keepWantedSince}`);
    return n;
  }

  async confirm<T>(digest: Digest, op: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + DELETE_WAIT_MS;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      const r = (await this.redis.eval(CONFIRM, 3, this.claimsKey, this.lockKey, this.wantedKey, digest)) as number;
      if (r === 1) return op();
      // The GC decided to delete it and is deleting it now: once done, `op` finds the blob gone (or the
      // writer's own new copy, when it writes the bytes again after this).
      if (Date.now() > deadline) throw new Error(`blob ${digest}: a garbage collection has been deleting it for over ${DELETE_WAIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** A claimed blob stays in place until deleted: a read needs nothing from Redis. */
  read<T>(_digest: Digest, op: () => Promise<T>): Promise<T> {
    return op();
  }
}
