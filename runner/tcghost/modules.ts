// Kernel modules for the TCG host (docs/backends/kvm-tcg.md): which ones its guest loads, their
// names and dependencies as a kernel package holds them, and the order to load them in. Shared by
// the image builder (runner/tcghost/image.ts) and the pinned kernels (runner/peers/kernels.ts), and
// kept apart from both so neither needs the other.

import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** Modules the guest loads (with their parameters); their dependencies are added from the modules' own `depends=`. */
export const WANTED_MODULES: readonly { name: string; params: string }[] = [
  // nested=1: L1's VMRUN is KVM's to emulate (the svm.* and scenario.* cases)
  { name: 'kvm_amd', params: 'nested=1' },
  { name: 'virtio_pci', params: '' },
  { name: '9pnet_virtio', params: '' },
  { name: '9p', params: '' },
];
export class TcgHostImageError extends Error {}

/** A module's name as the kernel spells it in `depends=` (dashes become underscores). */
export const moduleName = (file: string): string => basename(file).replace(/\.ko$/, '').replace(/-/g, '_');

/** The `depends=` list of a module file's .modinfo section (empty when it depends on nothing). */
export function moduleDepends(ko: Uint8Array): string[] {
  const text = Buffer.from(ko).toString('latin1');
  const at = text.indexOf('\0depends=');
  if (at < 0) return [];
  const end = text.indexOf('\0', at + 1);
  const list = text.slice(at + '\0depends='.length, end < 0 ? undefined : end);
  return list === '' ? [] : list.split(',');
}

/**
 * Load order for `wanted`: each module after everything it depends on. `deps` gives a module's
 * dependencies; `builtin` the modules the kernel has built in (not loaded). Throws on a missing
 * module or a cycle, naming the chain.
 */
export function loadOrder(wanted: readonly string[], deps: (name: string) => string[] | undefined, builtin: ReadonlySet<string>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    if (builtin.has(name) || state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new TcgHostImageError(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const d = deps(name);
    if (d === undefined) throw new TcgHostImageError(`module ${name} is not in the kernel package${chain.length ? ` (needed by ${chain.join(' -> ')})` : ''}`);
    state.set(name, 'visiting');
    for (const x of d) visit(x, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

/**
 * The modules of an unpacked kernel's lib/modules/<release> (`modRoot`): module name → file (.ko,
 * or compressed .ko.xz/.zst/.gz), and the names modules.builtin says are built in (empty without it).
 * The TCG host's image and the pinned kernel peers (runner/peers/kernels.ts) both read them so.
 */
export async function moduleIndex(modRoot: string): Promise<{ byName: Map<string, string>; builtin: Set<string>; builtinFile: string }> {
  const files = (await walk(join(modRoot, 'kernel'))).filter((f) => /\.ko(\.(xz|zst|gz))?$/.test(f));
  const byName = new Map(files.map((f) => [moduleName(f.replace(/\.(xz|zst|gz)$/, '')), f]));
  const builtinFile = join(modRoot, 'modules.builtin');
  const builtinText = existsSync(builtinFile) ? await readFile(builtinFile, 'utf8') : '';
  return { byName, builtin: new Set(builtinText.split('\n').filter(Boolean).map((l) => moduleName(l))), builtinFile };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

