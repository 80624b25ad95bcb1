// The exact Debian package versions behind the host's own columns (BackendInfo.packages), so that
// results.json says which build of QEMU or Bochs gave a record as precisely as it does for a pinned
// peer (runner/peers/launch.ts PeerStatus.packages). Read with dpkg-query; a machine without dpkg,
// or a package not installed, simply has no entry.

import { execa } from 'execa';
import { release } from 'node:os';

/** The packages whose versions matter for each host backend family. `@kernel`: the running kernel's image. */
export const HOST_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  'qemu-tcg': ['qemu-system-x86', 'qemu-system-data'],
  'qemu-kvm': ['qemu-system-x86', 'qemu-system-data', '@kernel'],
  'bochs-ryzen': ['bochs', 'bochsbios'],
  'bochs-phenom': ['bochs', 'bochsbios'],
  kvm: ['@kernel'],
  'kvm-tcg': ['qemu-system-x86', 'qemu-system-data'],
};

/** `pkg version` lines of dpkg-query → a map (packages not installed have an empty version and are left out). */
export function parseDpkgVersions(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\S+)$/.exec(line.trim());
    if (m) out[m[1]!.replace(/:amd64$/, '')] = m[2]!;
  }
  return out;
}

/** The installed versions of the family's packages; empty when dpkg-query is missing or knows none. */
export async function hostPackages(family: string): Promise<Record<string, string>> {
  const wanted = HOST_PACKAGES[family];
  if (!wanted) return {};
  const names = wanted.map((p) => (p === '@kernel' ? `linux-image-${release()}` : p));
  const r = await execa('dpkg-query', ['-W', '-f', '${Package} ${Version}\n', ...names], { reject: false, stdin: 'ignore', timeout: 10_000 }).catch(() => undefined);
  return r ? parseDpkgVersions(String(r.stdout ?? '')) : {};
}
