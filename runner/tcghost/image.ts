// The TCG host's boot files (docs/backends/kvm-tcg.md): Debian's own kernel, with kvm_amd and
// the 9p modules from the same package, busybox-static, the native runner's helper linked
// statically, and runner/tcghost/init.sh as /init. Built under build/tcghost/:
//
//   debs/                 linux-image-<release> and busybox-static, from `apt-get download`
//   vmlinuz, initrd.gz    what QEMU boots (runner/tcghost/host.ts)
//   manifest.json         what went in: packages, kernel release, module order, source hash
//
// Downloading happens only in `svmconf tcghost` (`make tcghost`); a run reuses what is there and
// rebuilds the initramfs on its own when the helper's sources or init.sh changed.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { ROOT } from '../../generator/index.ts';
import { cpioNewc, type CpioEntry } from './cpio.ts';
import { cHeader, writeCHeader } from '../../arch/c-header.ts';

export const TCGHOST_DIR = join(ROOT, 'build', 'tcghost');
export const INIT_SCRIPT = join(ROOT, 'runner', 'tcghost', 'init.sh');
const NATIVE_DIR = join(ROOT, 'native', 'kvm');
/** Debian's metapackage for the current kernel; it depends on linux-image-<release>. */
export const KERNEL_METAPACKAGE = 'linux-image-amd64';
export const BUSYBOX_PACKAGE = 'busybox-static';
/** Modules the guest loads (with their parameters); their dependencies are added from the modules' own `depends=`. */
export const WANTED_MODULES: readonly { name: string; params: string }[] = [
  // nested=1: L1's VMRUN is KVM's to emulate (the svm.* and scenario.* cases)
  { name: 'kvm_amd', params: 'nested=1' },
  { name: 'virtio_pci', params: '' },
  { name: '9pnet_virtio', params: '' },
  { name: '9p', params: '' },
];
/** The parts of the kernel package the modules above (and what they need) live in. */
const MODULE_DIRS = ['arch/x86/kvm', 'virt', 'drivers/crypto', 'drivers/virtio', 'net/9p', 'fs'];
export const MISSING_IMAGE = 'the TCG host is not built: run `make tcghost` (downloads Debian\'s linux-image-amd64 and busybox-static with apt-get, about 72 MB)';

export interface TcgHostImage {
  vmlinuz: string;
  initrd: string;
  manifest: TcgHostManifest;
}

export interface TcgHostManifest {
  kernelPackage: string;
  kernelRelease: string;
  busyboxPackage: string;
  /** Module files in load order, with parameters. */
  modules: { file: string; params: string }[];
  /** sha256 of the helper's sources and init.sh: a change rebuilds the initramfs. */
  sourceHash: string;
}

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

async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  const files = (await readdir(NATIVE_DIR)).filter((f) => f.endsWith('.c') || f.endsWith('.h')).sort();
  for (const f of files) h.update(f).update(await readFile(join(NATIVE_DIR, f)));
  h.update('init.sh').update(await readFile(INIT_SCRIPT));
  h.update('svmconf-arch.h').update(cHeader());
  return h.digest('hex');
}

const debsDir = (dir: string): string => join(dir, 'debs');

async function findDeb(dir: string, prefix: string): Promise<string | undefined> {
  const names = existsSync(debsDir(dir)) ? await readdir(debsDir(dir)) : [];
  const hits = names.filter((n) => n.startsWith(prefix) && n.endsWith('.deb')).sort();
  return hits.length ? join(debsDir(dir), hits[hits.length - 1]!) : undefined;
}

/** `apt-get download` of the current kernel and busybox-static into build/tcghost/debs. */
export async function downloadPackages(dir = TCGHOST_DIR, log: (s: string) => void = () => {}): Promise<void> {
  const apt = await execa('apt-cache', ['depends', KERNEL_METAPACKAGE], { reject: false });
  if (apt.exitCode !== 0) {
    throw new TcgHostImageError(`apt-cache depends ${KERNEL_METAPACKAGE} failed (the TCG host is built from Debian's kernel package; on Debian or Ubuntu run apt-get update first): ${String(apt.stderr).trim()}`);
  }
  const image = /Depends: (linux-image-\S+)/.exec(String(apt.stdout))?.[1];
  if (image === undefined) throw new TcgHostImageError(`${KERNEL_METAPACKAGE} names no linux-image package: ${String(apt.stdout).trim()}`);
  await mkdir(debsDir(dir), { recursive: true });
  for (const pkg of [image, BUSYBOX_PACKAGE]) {
    if (await findDeb(dir, `${pkg}_`)) continue;
    log(`tcghost: apt-get download ${pkg}`);
    const r = await execa('apt-get', ['download', pkg], { cwd: debsDir(dir), reject: false });
    if (r.exitCode !== 0) throw new TcgHostImageError(`apt-get download ${pkg} failed: ${String(r.stderr).trim().split('\n').slice(-2).join(' ')}`);
  }
}

async function extract(deb: string, into: string, patterns: string[]): Promise<void> {
  await rm(into, { recursive: true, force: true });
  await mkdir(into, { recursive: true });
  // dpkg-deb --fsys-tarfile | tar: only what the guest needs, not the whole 400 MB of modules
  const sh = await execa('sh', ['-c', 'f=$1; d=$2; shift 2; dpkg-deb --fsys-tarfile "$f" | tar -x -C "$d" --wildcards "$@"', 'sh', deb, into, ...patterns], { reject: false });
  // tar exits 2 when a pattern matched nothing (a directory the package does not have): the
  // module resolution below says which module is missing, more usefully than tar
  if (sh.exitCode !== 0 && !/Not found in archive/.test(String(sh.stderr))) {
    throw new TcgHostImageError(`extracting ${basename(deb)} failed: ${String(sh.stderr).trim()}`);
  }
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

/** Build vmlinuz, initrd.gz and manifest.json from the downloaded packages; returns the image. */
export async function buildImage(dir = TCGHOST_DIR, log: (s: string) => void = () => {}): Promise<TcgHostImage> {
  const kernelDeb = await findDeb(dir, 'linux-image-');
  const busyboxDeb = await findDeb(dir, `${BUSYBOX_PACKAGE}_`);
  if (!kernelDeb || !busyboxDeb) throw new TcgHostImageError(MISSING_IMAGE);
  const work = join(dir, 'work');
  const kroot = join(work, 'kernel');
  const broot = join(work, 'busybox');
  log(`tcghost: extracting ${basename(kernelDeb)}`);
  await extract(kernelDeb, kroot, ['./boot/vmlinuz-*', './lib/modules/*/modules.builtin', ...MODULE_DIRS.map((d) => `./lib/modules/*/kernel/${d}`)]);
  await extract(busyboxDeb, broot, ['./bin/busybox']);
  const releases = existsSync(join(kroot, 'lib', 'modules')) ? await readdir(join(kroot, 'lib', 'modules')) : [];
  if (releases.length !== 1) throw new TcgHostImageError(`${basename(kernelDeb)}: expected one lib/modules/<release>, found ${releases.length}`);
  const release = releases[0]!;
  const modRoot = join(kroot, 'lib', 'modules', release);
  const { byName, builtin } = await moduleIndex(modRoot);
  const depCache = new Map<string, string[]>();
  for (const [name, f] of byName) {
    if (!f.endsWith('.ko')) continue;
    depCache.set(name, moduleDepends(await readFile(f)));
  }
  const order = loadOrder(
    WANTED_MODULES.map((m) => m.name),
    (n) => {
      const f = byName.get(n);
      if (f !== undefined && !f.endsWith('.ko')) throw new TcgHostImageError(`module ${n} is compressed (${basename(f)}): busybox insmod loads only plain .ko files`);
      return depCache.get(n);
    },
    builtin,
  );

  log(`tcghost: linking the helper statically`);
  const helper = join(work, 'svmconf-kvm');
  const sources = (await readdir(NATIVE_DIR)).filter((f) => f.endsWith('.c')).map((f) => join(NATIVE_DIR, f));
  // the helper's constants, generated from arch/ as `make native` does (arch/c-header.ts)
  writeCHeader(join(work, 'svmconf-arch.h'));
  const cc = await execa(process.env.NATIVE_CC ?? 'cc', ['-O2', '-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-static', '-I', work, '-o', helper, ...sources], { reject: false });
  if (cc.exitCode !== 0) throw new TcgHostImageError(`static link of the helper failed (needs libc6-dev's libc.a): ${String(cc.stderr).trim()}`);

  const vmlinuz = (await readdir(join(kroot, 'boot'))).find((n) => n.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new TcgHostImageError(`${basename(kernelDeb)} has no boot/vmlinuz-*`);
  const params = new Map(WANTED_MODULES.map((m) => [m.name, m.params]));
  const modules = order.map((n) => ({ file: basename(byName.get(n)!), params: params.get(n) ?? '' }));
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'mods', 'proc', 'spool', 'sys', 'tmp'].map((d): CpioEntry => ({ name: d, kind: 'dir', mode: 0o755 })),
    { name: 'init', kind: 'file', mode: 0o755, data: await readFile(INIT_SCRIPT) },
    { name: 'bin/busybox', kind: 'file', mode: 0o755, data: await readFile(join(broot, 'bin', 'busybox')) },
    { name: 'bin/sh', kind: 'symlink', mode: 0o777, data: 'busybox' },
    { name: 'bin/svmconf-kvm', kind: 'file', mode: 0o755, data: await readFile(helper) },
    ...(await Promise.all(order.map(async (n): Promise<CpioEntry> => ({ name: `mods/${basename(byName.get(n)!)}`, kind: 'file', mode: 0o644, data: await readFile(byName.get(n)!) })))),
    { name: 'mods/order', kind: 'file', mode: 0o644, data: modules.map((m) => `${m.file}${m.params ? ` ${m.params}` : ''}\n`).join('') },
  ];
  const manifest: TcgHostManifest = {
    kernelPackage: basename(kernelDeb, '.deb'),
    kernelRelease: release,
    busyboxPackage: basename(busyboxDeb, '.deb'),
    modules,
    sourceHash: await sourceHash(),
  };
  const image = paths(dir);
  await writeAtomic(image.initrd, gzipSync(cpioNewc(entries), { level: 6 }));
  await writeAtomic(image.vmlinuz, await readFile(join(kroot, 'boot', vmlinuz)));
  await writeAtomic(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await rm(work, { recursive: true, force: true });
  log(`tcghost: ${relative(process.cwd(), image.initrd)} (${release}; modules ${order.join(' ')})`);
  return { ...image, manifest };
}

const paths = (dir: string): { vmlinuz: string; initrd: string } => ({ vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.gz') });

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * The image, ready to boot: as built, or rebuilt from the downloaded packages when the helper's
 * sources or init.sh changed since. Throws TcgHostImageError (MISSING_IMAGE when nothing was
 * downloaded) with what to do.
 */
export async function readyImage(dir = TCGHOST_DIR, log: (s: string) => void = () => {}): Promise<TcgHostImage> {
  const image = paths(dir);
  let manifest: TcgHostManifest | undefined;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as TcgHostManifest;
  } catch {
    manifest = undefined;
  }
  if (manifest && existsSync(image.vmlinuz) && existsSync(image.initrd) && manifest.sourceHash === (await sourceHash())) return { ...image, manifest };
  return buildImage(dir, log);
}
