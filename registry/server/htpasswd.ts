import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';

const VERIFIED_TTL_MS = 5 * 60_000;

/**
 * Users from an Apache htpasswd file (bcrypt entries only: `htpasswd -B`). bcrypt costs tens of
 * milliseconds by design, so credentials that verified are remembered (by a hash of them) for a while;
 * every request of a push carries them.
 */
export class Htpasswd {
  private readonly users = new Map<string, string>();
  private readonly verified = new Map<string, { user: string; until: number }>();

  constructor(
    text: string,
    readonly source = 'htpasswd',
  ) {
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (colon <= 0 || !/^\$2[aby]\$\d\d\$/.test(hash)) {
        throw new Error(`${source}:${i + 1}: not a bcrypt entry (create it with "htpasswd -B")`);
      }
      this.users.set(user, hash);
    });
  }

  static fromFile(file: string): Htpasswd {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`cannot read htpasswd file ${file}: ${(e as Error).message}`);
    }
    return new Htpasswd(text, file);
  }

  get size(): number {
    return this.users.size;
  }

  /** The user name when the password is right, else undefined. */
  async verify(user: string, password: string): Promise<string | undefined> {
    const key = createHash('sha256').update(user).update('\0').update(password).digest('hex');
    const hit = this.verified.get(key);
    const now = Date.now();
    if (hit && hit.until > now) return hit.user;
    const hash = this.users.get(user);
    if (!hash) return undefined;
    if (!(await bcrypt.compare(password, hash))) return undefined;
    if (this.verified.size > 10_000) this.verified.clear();
    this.verified.set(key, { user, until: now + VERIFIED_TTL_MS });
    return user;
  }
}
