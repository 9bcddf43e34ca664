/** `--output type=oci,dest=DIR|FILE.tar` or `type=docker,dest=FILE.tar` (BuildKit's syntax). */
export interface OutputSpec {
  type: 'oci' | 'docker';
  dest: string;
  /** For oci: a directory layout rather than a tar. */
  directory: boolean;
}

export function parseOutputSpec(spec: string): OutputSpec {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`--output "${spec}": expected key=value pairs such as type=oci,dest=out.tar`);
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  const dest = fields.get('dest');
  if (type !== 'oci' && type !== 'docker') throw new Error(`--output "${spec}": type must be oci or docker`);
  if (!dest) throw new Error(`--output "${spec}": dest=PATH is required`);
  const tarRequested = fields.get('tar');
  const directory = type === 'oci' && (tarRequested === 'false' || (tarRequested === undefined && !/\.tar$/i.test(dest)));
  return { type, dest, directory };
}
