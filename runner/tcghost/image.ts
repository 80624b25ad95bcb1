// The TCG host's boot files (docs/backends/kvm-tcg.md): Debian's own kernel, with kvm_amd and
// the 9p modules from the same package, busybox-static, the native runner's helper linked
// statically, and runner/tcghost/init.sh as /init. Built under build/tcghost/:
//
//   debs/                 linux-image-<release> and busybox-static, from `apt-get download`
//   vmlinuz, initrd.gz    what QEMU boots (runner/tcghost/host.ts)
//   manifest.json         what went in: packages, kernel release, module order, source hash
//   <peer>/               the image of a pinned kernel (linux@7.3, runner/peers/kernels.ts):
//                         initrd.gz and manifest.json, the same initramfs around the peer's own
//                         modules; it boots the peer's vmlinuz where the download left it
//
// Downloading happens only in `svmconf tcghost` (`make tcghost`) and `svmconf peers`; a run reuses
// what is there and rebuilds an initramfs on its own when the helper's sources or init.sh changed
// (a pinned kernel's also when the kernel was fetched again or busybox-static changed).

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { ROOT } from '../../generator/index.ts';
import { cpioNewc, type CpioEntry } from './cpio.ts';
import { cHeader, writeCHeader } from '../../arch/c-header.ts';
import type { PeerKernel } from '../peers/launch.ts';
import { loadOrder, moduleDepends, moduleIndex, moduleName, TcgHostImageError, WANTED_MODULES } from './modules.ts';

export { loadOrder, moduleDepends, moduleIndex, moduleName, TcgHostImageError, WANTED_MODULES };

export const TCGHOST_DIR = join(ROOT, 'build', 'tcghost');
export const INIT_SCRIPT = join(ROOT, 'runner', 'tcghost', 'init.sh');
const NATIVE_DIR = join(ROOT, 'native', 'kvm');
/** Debian's metapackage for the current kernel; it depends on linux-image-<release>. */
export const KERNEL_METAPACKAGE = 'linux-image-amd64';
export const BUSYBOX_PACKAGE = 'busybox-static';
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
  /** A pinned kernel's image: the peer (linux@7.3) … */
  peer?: string;
  /** … and the download it was built from (its pins' hash and fetch time): a new download rebuilds it. */
  kernelInput?: string;
}

/** The files of a pinned kernel peer that an image is built from (runner/peers/launch.ts pinnedKernel). */
export type PeerKernelFiles = Pick<PeerKernel, 'peer' | 'vmlinuz' | 'modsDir' | 'manifest'>;

/** Where a pinned kernel's image lives: build/tcghost/<peer>/ (its spool and console log too). */
export const peerImageDir = (peer: string, dir = TCGHOST_DIR): string => join(dir, peer);

export const MISSING_BUSYBOX = 'busybox-static is not downloaded: run `make tcghost` (the TCG host images of the pinned kernels take busybox from build/tcghost/debs)';

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

/** The kernel half of an image: the file QEMU boots, its release and package, and the modules in load order. */
interface KernelParts {
  vmlinuz: string;
  release: string;
  kernelPackage: string;
  /** Module files to pack under mods/, in load order, with their parameters. */
  modules: { file: string; params: string; path: string }[];
}

/** KernelParts from the downloaded linux-image-*.deb of build/tcghost/debs, unpacked under `work`. */
async function debKernelParts(kernelDeb: string, work: string, log: (s: string) => void): Promise<KernelParts> {
  const kroot = join(work, 'kernel');
  log(`tcghost: extracting ${basename(kernelDeb)}`);
  await extract(kernelDeb, kroot, ['./boot/vmlinuz-*', './lib/modules/*/modules.builtin', ...MODULE_DIRS.map((d) => `./lib/modules/*/kernel/${d}`)]);
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
  const vmlinuz = (await readdir(join(kroot, 'boot'))).find((n) => n.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new TcgHostImageError(`${basename(kernelDeb)} has no boot/vmlinuz-*`);
  const params = new Map(WANTED_MODULES.map((m) => [m.name, m.params]));
  return {
    vmlinuz: join(kroot, 'boot', vmlinuz),
    release,
    kernelPackage: basename(kernelDeb, '.deb'),
    modules: order.map((n) => ({ file: basename(byName.get(n)!), params: params.get(n) ?? '', path: byName.get(n)! })),
  };
}

/**
 * KernelParts of a pinned kernel peer (runner/peers/kernels.ts): its vmlinuz, and mods/ as the
 * download left it, decompressed and with mods/order already in load order (the same
 * WANTED_MODULES and loadOrder as debKernelParts, so the two images load the same modules).
 */
async function peerKernelParts(k: PeerKernelFiles): Promise<KernelParts> {
  const orderFile = join(k.modsDir, 'order');
  if (!existsSync(k.vmlinuz) || !existsSync(orderFile)) throw new TcgHostImageError(`${k.peer}: ${existsSync(k.vmlinuz) ? orderFile : k.vmlinuz} is missing; run svmconf peers --rebuild --only ${k.peer}`);
  const modules = (await readFile(orderFile, 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [file, ...params] = l.trim().split(/\s+/);
      return { file: file!, params: params.join(' '), path: join(k.modsDir, file!) };
    });
  const binary = k.manifest.packages.find((p) => /^linux-(image|binary)-/.test(p.package)) ?? k.manifest.packages[0];
  return {
    vmlinuz: k.vmlinuz,
    release: k.manifest.release,
    kernelPackage: binary ? basename(binary.deb, '.deb') : k.peer,
    modules,
  };
}

/** The helper linked statically into `work` (its constants generated from arch/, as `make native` does). */
async function linkHelper(work: string, log: (s: string) => void): Promise<string> {
  log(`tcghost: linking the helper statically`);
  const helper = join(work, 'svmconf-kvm');
  const sources = (await readdir(NATIVE_DIR)).filter((f) => f.endsWith('.c')).map((f) => join(NATIVE_DIR, f));
  // the helper's constants, generated from arch/ as `make native` does (arch/c-header.ts)
  writeCHeader(join(work, 'svmconf-arch.h'));
  const cc = await execa(process.env.NATIVE_CC ?? 'cc', ['-O2', '-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-static', '-I', work, '-o', helper, ...sources], { reject: false });
  if (cc.exitCode !== 0) throw new TcgHostImageError(`static link of the helper failed (needs libc6-dev's libc.a): ${String(cc.stderr).trim()}`);
  return helper;
}

/**
 * initrd.gz and manifest.json in `dir` from a kernel's parts and busybox-static (plus vmlinuz,
 * copied in when `copyKernel`; a peer's image boots the peer's own file). `work` is removed after.
 */
async function assemble(dir: string, work: string, kernel: KernelParts, busyboxDeb: string, extra: Pick<TcgHostManifest, 'peer' | 'kernelInput'>, copyKernel: boolean, log: (s: string) => void): Promise<TcgHostImage> {
  const broot = join(work, 'busybox');
  await extract(busyboxDeb, broot, ['./bin/busybox']);
  const helper = await linkHelper(work, log);
  const modules = kernel.modules.map((m) => ({ file: m.file, params: m.params }));
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'mods', 'proc', 'spool', 'sys', 'tmp'].map((d): CpioEntry => ({ name: d, kind: 'dir', mode: 0o755 })),
    { name: 'init', kind: 'file', mode: 0o755, data: await readFile(INIT_SCRIPT) },
    { name: 'bin/busybox', kind: 'file', mode: 0o755, data: await readFile(join(broot, 'bin', 'busybox')) },
    { name: 'bin/sh', kind: 'symlink', mode: 0o777, data: 'busybox' },
    { name: 'bin/svmconf-kvm', kind: 'file', mode: 0o755, data: await readFile(helper) },
    ...(await Promise.all(kernel.modules.map(async (m): Promise<CpioEntry> => ({ name: `mods/${m.file}`, kind: 'file', mode: 0o644, data: await readFile(m.path) })))),
    { name: 'mods/order', kind: 'file', mode: 0o644, data: modules.map((m) => `${m.file}${m.params ? ` ${m.params}` : ''}\n`).join('') },
  ];
  const manifest: TcgHostManifest = {
    kernelPackage: kernel.kernelPackage,
    kernelRelease: kernel.release,
    busyboxPackage: basename(busyboxDeb, '.deb'),
    modules,
    sourceHash: await sourceHash(),
    ...extra,
  };
  await mkdir(dir, { recursive: true });
  const image = { ...paths(dir), ...(copyKernel ? {} : { vmlinuz: kernel.vmlinuz }) };
  await writeAtomic(image.initrd, gzipSync(cpioNewc(entries), { level: 6 }));
  if (copyKernel) await writeAtomic(image.vmlinuz, await readFile(kernel.vmlinuz));
  await writeAtomic(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await rm(work, { recursive: true, force: true });
  log(`tcghost: ${relative(process.cwd(), image.initrd)} (${kernel.release}; modules ${modules.map((m) => m.file.replace(/\.ko$/, '')).join(' ')})`);
  return { ...image, manifest };
}

/** Build vmlinuz, initrd.gz and manifest.json from the downloaded packages; returns the image. */
export async function buildImage(dir = TCGHOST_DIR, log: (s: string) => void = () => {}): Promise<TcgHostImage> {
  const kernelDeb = await findDeb(dir, 'linux-image-');
  const busyboxDeb = await findDeb(dir, `${BUSYBOX_PACKAGE}_`);
  if (!kernelDeb || !busyboxDeb) throw new TcgHostImageError(MISSING_IMAGE);
  const work = join(dir, 'work');
  const kernel = await debKernelParts(kernelDeb, work, log);
  return assemble(dir, work, kernel, busyboxDeb, {}, true, log);
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

/** What a pinned kernel's image was built from, beyond the sources: the download, as its manifest stamps it. */
const kernelInput = (k: PeerKernelFiles): string => `${k.manifest.pinHash} ${k.manifest.fetchedAt}`;

/**
 * The image of a pinned kernel peer (docs/backends/kvm-tcg.md "Versioned columns"), ready to boot:
 * built into build/tcghost/<peer>/ from the peer's vmlinuz and mods/ and the busybox-static of
 * build/tcghost/debs, kept while the helper's sources, init.sh, the kernel download and busybox
 * are the same, rebuilt otherwise. Throws TcgHostImageError (MISSING_BUSYBOX) with what to do.
 */
export async function readyPeerImage(k: PeerKernelFiles, o: { dir?: string; tcghostDir?: string; log?: (s: string) => void } = {}): Promise<TcgHostImage> {
  const dir = o.dir ?? peerImageDir(k.peer);
  const log = o.log ?? ((): void => {});
  const busyboxDeb = await findDeb(o.tcghostDir ?? TCGHOST_DIR, `${BUSYBOX_PACKAGE}_`);
  if (!busyboxDeb) throw new TcgHostImageError(MISSING_BUSYBOX);
  let manifest: TcgHostManifest | undefined;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as TcgHostManifest;
  } catch {
    manifest = undefined;
  }
  const initrd = paths(dir).initrd;
  if (
    manifest?.peer === k.peer &&
    manifest.kernelInput === kernelInput(k) &&
    manifest.busyboxPackage === basename(busyboxDeb, '.deb') &&
    manifest.sourceHash === (await sourceHash()) &&
    existsSync(initrd) &&
    existsSync(k.vmlinuz)
  ) {
    return { vmlinuz: k.vmlinuz, initrd, manifest };
  }
  const work = join(dir, `work-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  log(`tcghost: building the image of ${k.peer} (Linux ${k.manifest.release})`);
  return assemble(dir, work, await peerKernelParts(k), busyboxDeb, { peer: k.peer, kernelInput: kernelInput(k) }, false, log);
}
