import { promises as fs } from 'node:fs';
import { resolveInRoot } from '../snapshot/index.js';

export interface ExecUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

async function readInRoot(rootfs: string, path: string): Promise<string> {
  try {
    return await fs.readFile(await resolveInRoot(rootfs, path, true), 'utf8');
  } catch {
    return '';
  }
}

function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const [name, , uid, gid, , home, shell] = line.split(':');
    if (name === undefined || uid === undefined || gid === undefined || home === undefined || shell === undefined || name.startsWith('#')) continue;
    entries.push({ name, uid: Number(uid), gid: Number(gid), home });
  }
  return entries;
}

function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const [name, , gid, members] = line.split(':');
    if (name === undefined || gid === undefined || members === undefined || name.startsWith('#')) continue;
    entries.push({ name, gid: Number(gid), members: members.split(',').filter(Boolean) });
  }
  return entries;
}

const numeric = (s: string) => /^\d+$/.test(s);

/**
 * Resolves a Dockerfile `USER` value (`name`, `uid`, `name:group`, `uid:gid`) against the image's own
 * /etc/passwd and /etc/group, as docker does: names must exist there, numeric ids need not.
 */
export async function resolveUser(rootfs: string, spec: string | undefined): Promise<ExecUser> {
  // no USER: root, whether or not the image has an /etc/passwd (FROM scratch has none)
  const value = (spec ?? '').trim() || '0';
  const [userPart = '', groupPart] = value.split(':', 2);
  const passwd = parsePasswd(await readInRoot(rootfs, 'etc/passwd'));
  const groups = parseGroup(await readInRoot(rootfs, 'etc/group'));
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (numeric(userPart)) {
    uid = Number(userPart);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new Error(`unable to find user ${userPart}: no matching entries in the image's /etc/passwd`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    if (numeric(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new Error(`unable to find group ${groupPart}: no matching entries in the image's /etc/group`);
      gid = g.gid;
    }
  }
  // docker lists the primary group first among the supplementary ones (`id` shows groups=<gid>), then,
  // only when no group was named, the groups that list the user as a member.
  const memberOf = groupPart === undefined && entry ? groups.filter((g) => g.members.includes(entry!.name)).map((g) => g.gid) : [];
  const additionalGids = [...new Set([gid, ...memberOf])];
  return { uid, gid, additionalGids, home: entry?.home || '/' };
}
