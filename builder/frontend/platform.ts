/** Platform strings (`linux/amd64`, `linux/arm/v7`) and the host's default, as BuildKit formats them. */
import { FrontendProblem } from './errors.js';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

const archOfNode: Record<string, PlatformSpec> = {
  x64: { os: 'linux', architecture: 'amd64' },
  arm64: { os: 'linux', architecture: 'arm64' },
  arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
  ia32: { os: 'linux', architecture: '386' },
  ppc64: { os: 'linux', architecture: 'ppc64le' },
  s390x: { os: 'linux', architecture: 's390x' },
  riscv64: { os: 'linux', architecture: 'riscv64' },
};

export function hostPlatform(): PlatformSpec {
  return { ...(archOfNode[process.arch] ?? { os: 'linux', architecture: process.arch }) };
}

const archAliases: Record<string, [string, string?]> = {
  x86_64: ['amd64'],
  'x86-64': ['amd64'],
  aarch64: ['arm64'],
  armhf: ['arm', 'v7'],
  armel: ['arm', 'v6'],
  i386: ['386'],
};

/** Parses `os[/arch[/variant]]` or a bare architecture; normalizes aliases (x86_64 → amd64). */
export function parsePlatform(s: string): PlatformSpec {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.some((p) => !/^[a-z0-9_.-]+$/.test(p)) || parts.length > 3) {
    throw new FrontendProblem(`invalid platform "${s}": expected os/arch[/variant], e.g. linux/amd64`, s);
  }
  let os = 'linux';
  let arch: string;
  let variant: string | undefined;
  const knownOS = [
    'linux',
    'windows',
    'darwin',
    'freebsd',
    'netbsd',
    'openbsd',
    'solaris',
    'illumos',
    'aix',
    'android',
    'ios',
    'js',
    'wasip1',
    'plan9',
    'dragonfly',
  ];
  if (parts.length === 1) {
    if (knownOS.includes(parts[0]!)) return { os: parts[0]!, architecture: hostPlatform().architecture };
    arch = parts[0]!;
  } else {
    os = parts[0]!;
    arch = parts[1]!;
    variant = parts[2];
    if (!knownOS.includes(os)) throw new FrontendProblem(`invalid platform "${s}": unknown operating system "${os}"`, s);
  }
  const alias = archAliases[arch];
  if (alias) {
    arch = alias[0];
    variant ??= alias[1];
  }
  if (arch === 'arm64' && variant === 'v8') variant = undefined;
  if (arch === 'arm' && !variant) variant = 'v7';
  return variant ? { os, architecture: arch, variant } : { os, architecture: arch };
}

/**
 * An image config's platform as containerd's platforms.Normalize gives it (BuildKit normalizes the
 * image it writes): os lowercased, architecture aliases resolved (x86_64 → amd64, aarch64 → arm64).
 */
export function normalizePlatform(p: PlatformSpec): PlatformSpec {
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  const alias = archAliases[architecture];
  if (alias) {
    architecture = alias[0];
    variant ||= alias[1];
  }
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  return variant ? { os: p.os.toLowerCase(), architecture, variant } : { os: p.os.toLowerCase(), architecture };
}

export function formatPlatform(p: PlatformSpec): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}
