/** `--chmod` as BuildKit takes it: octal (`755`, `0640`) or symbolic (`u+x,go-w`, `a=rX`). */
export type ModeChange = (current: number, isDirectory: boolean) => number;

export function parseChmod(spec: string): ModeChange {
  if (/^[0-7]{1,4}$/.test(spec)) {
    const mode = parseInt(spec, 8);
    return () => mode;
  }
  const clauses = spec.split(',').map((clause) => {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(clause);
    if (!m) throw new Error(`invalid --chmod "${spec}": use octal (0755) or symbolic (u+x,go-w) notation`);
    return { who: m[1] || 'a', op: m[2]!, perms: m[3]! };
  });
  return (current, isDirectory) => {
    let mode = current & 0o7777;
    for (const { who, op, perms } of clauses) {
      let mask = 0;
      const classes = who.includes('a') ? 'ugo' : who;
      for (const c of classes) {
        const shift = c === 'u' ? 6 : c === 'g' ? 3 : 0;
        for (const p of perms) {
          if (p === 'r') mask |= 4 << shift;
          else if (p === 'w') mask |= 2 << shift;
          else if (p === 'x') mask |= 1 << shift;
          else if (p === 'X' && (isDirectory || (current & 0o111) !== 0)) mask |= 1 << shift;
          else if (p === 's' && c !== 'o') mask |= c === 'u' ? 0o4000 : 0o2000;
          else if (p === 't') mask |= 0o1000;
        }
      }
      if (op === '+') mode |= mask;
      else if (op === '-') mode &= ~mask;
      else {
        let clear = 0;
        for (const c of classes) clear |= 7 << (c === 'u' ? 6 : c === 'g' ? 3 : 0);
        mode = (mode & ~clear) | mask;
      }
    }
    return mode;
  };
}
