import { spawn } from 'node:child_process';
import { decodeName, encodeName } from './fs-names.js';

/**
 * Extended attributes through attr's getfattr/setfattr (Node has no xattr API and native addons are out):
 * one process reads a whole tree or a list of paths, one process restores a whole batch.
 */
export type XattrMap = Map<string, Map<string, Buffer>>;

/**
 * Which xattrs a layer records and an unpack restores: security.capability among security.*, user.*,
 * trusted.* but overlay's own (which could redirect lookups).
 */
export function keepXattr(name: string): boolean {
  if (name.startsWith('trusted.overlay.')) return false;
  return name === 'security.capability' || name.startsWith('user.') || name.startsWith('trusted.');
}

function runTool(cmd: string, args: string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => reject(new Error(`cannot run ${cmd} (install the "attr" package: scripts/setup.sh): ${e.message}`)));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

function unescapeOctal(text: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === 0x5c && i + 3 < text.length + 0 && /^[0-7]{3}$/.test(text.subarray(i + 1, i + 4).toString('latin1'))) {
      out.push(parseInt(text.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else out.push(text.readUInt8(i));
  }
  return Buffer.from(out);
}

function escapeOctal(value: string): string {
  let out = '';
  for (const byte of encodeName(value)) {
    if (byte < 0x21 || byte === 0x5c || byte === 0x3d || byte > 0x7e) out += `\\${byte.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(byte);
  }
  return out;
}

function parseDump(dump: Buffer, into: XattrMap): void {
  let current: Map<string, Buffer> | undefined;
  let start = 0;
  while (start < dump.length) {
    let end = dump.indexOf(0x0a, start);
    if (end === -1) end = dump.length;
    const line = dump.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    if (line.subarray(0, 8).toString('latin1') === '# file: ') {
      const path = decodeName(unescapeOctal(line.subarray(8)));
      current = new Map();
      into.set(path, current);
      continue;
    }
    const eq = line.indexOf(0x3d);
    if (!current || eq === -1) continue;
    const name = unescapeOctal(line.subarray(0, eq)).toString('utf8');
    const raw = line.subarray(eq + 1).toString('latin1');
    const value = raw.startsWith('0x') ? Buffer.from(raw.slice(2), 'hex') : Buffer.alloc(0);
    current.set(name, value);
  }
}

function checkResult(r: { code: number; stdout: Buffer; stderr: string }, what: string): void {
  const real = r.stderr
    .split('\n')
    .filter((l) => l && !l.includes('Removing leading') && !l.includes('No such attribute'))
    .join('; ');
  if (r.code !== 0 && real) throw new Error(`${what} failed: ${real}`);
}

/** Every xattr of every entry under `dir` (symlinks not followed), keyed by absolute path. */
export async function readXattrTree(dir: string): Promise<XattrMap> {
  const r = await runTool('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', dir]);
  checkResult(r, `reading xattrs under ${dir}`);
  const out: XattrMap = new Map();
  parseDump(r.stdout, out);
  return out;
}

/** Argument bytes below which paths are passed to getfattr directly (far under any system's limit). */
const PLAIN_ARGS_BYTES = 64 * 1024;

/** The xattrs of the given paths (those with none are absent from the result). */
export async function readXattrs(paths: string[], name?: string): Promise<XattrMap> {
  const out: XattrMap = new Map();
  if (paths.length === 0) return out;
  // The paths go through xargs as NUL-separated bytes: arguments of a spawned process cannot carry names
  // that are not UTF-8, and xargs splits a long list at the system's argument limit.
  const select = name ? ['-n', name] : ['-d', '-m', '-'];
  const args = ['-h', ...select, '-e', 'hex', '--absolute-names', '--'];
  // A few plain names go straight to getfattr (one process, not two); names that are not UTF-8 and long
  // lists go through xargs
  const bytes = paths.reduce((n, p) => n + p.length + 1, 0);
  if (bytes < PLAIN_ARGS_BYTES && paths.every((p) => Buffer.byteLength(p) === encodeName(p).length)) {
    const r = await runTool('getfattr', [...args, ...paths]);
    checkResult(r, 'reading xattrs');
    parseDump(r.stdout, out);
    return out;
  }
  const list = Buffer.concat(paths.flatMap((p) => [encodeName(p), Buffer.from([0])]));
  const r = await runTool('xargs', ['-0', '-r', 'getfattr', ...args], list);
  checkResult(r, 'reading xattrs');
  parseDump(r.stdout, out);
  return out;
}

/** Sets xattrs on many paths in one setfattr process (symlinks not followed). */
export async function writeXattrs(entries: XattrMap): Promise<void> {
  if (entries.size === 0) return;
  const parts: string[] = [];
  for (const [path, attrs] of entries) {
    parts.push(`# file: ${escapeOctal(path)}\n`);
    for (const [name, value] of attrs) parts.push(`${escapeOctal(name)}=0x${value.toString('hex')}\n`);
    parts.push('\n');
  }
  const r = await runTool('setfattr', ['-h', '--restore=-'], Buffer.from(parts.join('')));
  if (r.code !== 0) throw new Error(`setting xattrs failed: ${r.stderr.trim().split('\n').slice(0, 3).join('; ')}`);
}
