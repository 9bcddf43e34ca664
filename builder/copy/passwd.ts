import { promises as fs } from 'node:fs';
import { resolveInRoot } from './root-path.js';

export interface Owner {
  uid: number;
  gid: number;
}

async function readColonFile(root: string, path: string): Promise<string[][]> {
  try {
    const text = await fs.readFile(await resolveInRoot(root, path), 'utf8');
    return text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

function numeric(s: string): number | undefined {
  return /^\d+$/.test(s) ? Number(s) : undefined;
}

/** A user name or id from the rootfs's /etc/passwd → uid and primary gid. */
export async function lookupUser(root: string, user: string): Promise<{ uid: number; gid: number; home?: string | undefined } | undefined> {
  const rows = await readColonFile(root, '/etc/passwd');
  const id = numeric(user);
  const row = rows.find((r) => (id !== undefined ? Number(r[2]) === id : r[0] === user));
  if (row) return { uid: Number(row[2]), gid: Number(row[3]), home: row[5] };
  if (id !== undefined) return { uid: id, gid: id };
  return undefined;
}

export async function lookupGroup(root: string, group: string): Promise<number | undefined> {
  const id = numeric(group);
  if (id !== undefined) return id;
  const row = (await readColonFile(root, '/etc/group')).find((r) => r[0] === group);
  return row ? Number(row[2]) : undefined;
}

/**
 * `--chown=user[:group]` resolved against the target rootfs as docker's builder does: names through
 * /etc/passwd and /etc/group, numbers as they are; without a group the user string names the group too.
 */
export async function resolveChown(root: string, spec: string): Promise<Owner> {
  const parts = spec.split(':');
  if (parts.length > 2 || !parts[0]) throw new Error(`invalid --chown "${spec}": expected USER[:GROUP] with names or numeric ids`);
  const userStr = parts[0];
  const groupStr = parts[1] ?? parts[0];
  const uid = numeric(userStr) ?? (await lookupUser(root, userStr))?.uid;
  if (uid === undefined) throw new Error(`--chown: user "${userStr}" is not in the image's /etc/passwd; use a numeric id or add the user first`);
  const gid = numeric(groupStr) ?? (await lookupGroup(root, groupStr));
  if (gid === undefined) throw new Error(`--chown: group "${groupStr}" is not in the image's /etc/group; use a numeric id or add the group first`);
  return { uid, gid };
}
