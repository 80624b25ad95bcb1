// The kernel peers (docs/peers.md "Kernels"): the TCG host's Linux versions of
// runner/peers/pins.yaml, fetched with `apt-get download` under a private apt configuration
// (build/peers/apt/: its own sources list, package lists and cache, so the host's apt state is
// neither read for sources nor written), into build/peers/kernels/<package version>/:
//
//   debs/           the pinned .deb files as downloaded
//   vmlinuz         the kernel
//   mods/           the modules the TCG host loads (runner/tcghost/image.ts WANTED_MODULES) and
//                   their dependencies, decompressed (busybox insmod loads plain .ko only), and
//                   mods/order: one `file [params]` a line in load order, as the TCG host's
//                   initramfs has it
//   manifest.json   packages and versions, kernel release, module order, the pins' hash
//
// A download is kept while its manifest matches the pins.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { loadOrder, moduleDepends, moduleIndex, TcgHostImageError, WANTED_MODULES } from '../tcghost/modules.ts';
import { formatPackagePin, kernelVersion, PeerError, type PeerPin, type Pins } from './pins.ts';
import { aptFailure, NO_VALID_UNTIL, PEERS_DIR } from './roots.ts';

export const KERNELS_DIR = join(PEERS_DIR, 'kernels');
export const APT_DIR = join(PEERS_DIR, 'apt');
export const KERNEL_MANIFEST = 'manifest.json';

export const kernelDir = (p: PeerPin, dir = KERNELS_DIR): string => join(dir, kernelVersion(p));

export interface KernelManifest {
  peer: string;
  suite: string;
  mirror: string;
  /** package=version as pinned, with the .deb file each came in. */
  packages: { package: string; version: string; deb: string }[];
  pinHash: string;
  /** `uname -r` of the kernel (the lib/modules/<release> directory). */
  release: string;
  /** Module files under mods/ in load order, with parameters. */
  modules: { file: string; params: string }[];
  fetchedAt: string;
}

/** A kernel peer's pins as one hash (suite, mirror and every package=version). */
export function kernelPinHash(p: PeerPin, mirror: string): string {
  const h = createHash('sha256').update(`suite ${p.suite}\nmirror ${mirror}\n`);
  for (const x of p.packages) h.update(`${formatPackagePin(x)}\n`);
  return h.digest('hex');
}

/** The private sources list: one line per suite, main only. */
export function sourcesList(mirror: string, suites: readonly string[]): string {
  return [...new Set(suites)].map((s) => `deb ${mirror} ${s} main\n`).join('');
}

/**
 * apt's options for the private configuration under `aptDir`: its own sources list (and no
 * sources.list.d), package lists, cache and an empty dpkg status, so the host's installed packages
 * do not decide anything. The host's apt.conf.d (proxy settings) still applies.
 */
export function aptOptions(aptDir: string): string[] {
  const o = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(aptDir, 'sources.list')),
    ...o('Dir::Etc::SourceParts', '/dev/null'),
    ...o('Dir::Etc::Preferences', '/dev/null'),
    ...o('Dir::Etc::PreferencesParts', '/dev/null'),
    ...o('Dir::State::Lists', join(aptDir, 'lists')),
    ...o('Dir::State::status', join(aptDir, 'status')),
    ...o('Dir::Cache', join(aptDir, 'cache')),
    ...o(NO_VALID_UNTIL.split(' ')[0]!, 'false'),
  ];
}

/** Write the private apt configuration for every suite of the pins and run `apt-get update` with it. */
export async function aptUpdate(pins: Pins, aptDir = APT_DIR, log: (s: string) => void = () => {}): Promise<void> {
  for (const d of ['lists/partial', 'cache/archives/partial']) await mkdir(join(aptDir, d), { recursive: true });
  await writeFile(join(aptDir, 'sources.list'), sourcesList(pins.mirror, pins.peers.map((p) => p.suite)));
  if (!existsSync(join(aptDir, 'status'))) await writeFile(join(aptDir, 'status'), '');
  log(`peers: apt-get update (private configuration ${aptDir})`);
  const r = await execa('apt-get', [...aptOptions(aptDir), 'update'], { reject: false, all: true, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new PeerError(aptFailure(String(r.all ?? ''), 'apt-get update of the private package lists'));
}

/** The newest version of each package in each suite, from the private lists (apt-cache madison). */
export async function latestVersions(packages: readonly string[], aptDir = APT_DIR): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  const r = await execa('apt-cache', [...aptOptions(aptDir), 'madison', ...packages], { reject: false, all: true });
  for (const line of String(r.stdout ?? '').split('\n')) {
    const m = /^\s*(\S+)\s*\|\s*(\S+)\s*\|\s*\S+\s+(\S+)\/main\b/.exec(line);
    if (!m) continue;
    const bySuite = out.get(m[1]!) ?? new Map<string, string>();
    if (!bySuite.has(m[3]!)) bySuite.set(m[3]!, m[2]!); // madison lists the newest first
    out.set(m[1]!, bySuite);
  }
  return out;
}

/** The manifest of a downloaded kernel, or undefined. */
export function readKernelManifest(dir: string): KernelManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, KERNEL_MANIFEST), 'utf8')) as KernelManifest;
  } catch {
    return undefined;
  }
}

/** A module file's bytes, decompressed when the package ships it as .ko.xz, .ko.zst or .ko.gz. */
async function moduleBytes(file: string): Promise<Buffer> {
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : file.endsWith('.gz') ? 'gzip' : undefined;
  if (!tool) return readFile(file);
  const r = await execa(tool, ['-dc', file], { encoding: 'buffer', reject: false });
  if (r.exitCode !== 0) throw new PeerError(`${tool} -dc ${basename(file)} failed (install ${tool === 'zstd' ? 'zstd' : 'xz-utils'}): ${Buffer.from(r.stderr as Uint8Array).toString().trim()}`);
  return Buffer.from(r.stdout as Uint8Array);
}

/**
 * Download and unpack one kernel peer (kept when its manifest matches the pins, unless `rebuild`).
 * `update` runs the private apt-get update first (once per command, the caller decides).
 */
export async function ensureKernel(
  p: PeerPin,
  pins: Pins,
  o: { rebuild?: boolean; dir?: string; aptDir?: string; log?: (s: string) => void; update?: () => Promise<void> } = {},
): Promise<{ manifest: KernelManifest; fetched: boolean; dir: string }> {
  const log = o.log ?? ((): void => {});
  const dir = kernelDir(p, o.dir);
  const hash = kernelPinHash(p, pins.mirror);
  const had = readKernelManifest(dir);
  if (!o.rebuild && had?.pinHash === hash && existsSync(join(dir, 'vmlinuz'))) return { manifest: had, fetched: false, dir };
  await o.update?.();
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    return await fetchKernel(p, pins.mirror, hash, dir, tmp, o.aptDir ?? APT_DIR, o.dir ?? KERNELS_DIR, log);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** ensureKernel's download and unpacking into `tmp`, renamed to `dir` at the end. */
async function fetchKernel(p: PeerPin, mirror: string, hash: string, dir: string, tmp: string, aptDir: string, parent: string, log: (s: string) => void): Promise<{ manifest: KernelManifest; fetched: boolean; dir: string }> {
  await rm(tmp, { recursive: true, force: true });
  const debs = join(tmp, 'debs');
  await mkdir(debs, { recursive: true });
  log(`peers: apt-get download ${p.packages.map(formatPackagePin).join(' ')}`);
  const dl = await execa('apt-get', [...aptOptions(aptDir), 'download', ...p.packages.map(formatPackagePin)], { cwd: debs, reject: false, all: true, stdin: 'ignore' });
  if (dl.exitCode !== 0) {
    throw new PeerError(aptFailure(String(dl.all ?? ''), `apt-get download for ${p.name}`));
  }
  const files = (await readdir(debs)).filter((f) => f.endsWith('.deb'));
  const packages = p.packages.map((x) => {
    // apt names the file <package>_<version with : as %3a>_<arch>.deb
    const deb = files.find((f) => f.startsWith(`${x.package}_`));
    if (!deb) throw new PeerError(`apt-get download for ${p.name} left no ${x.package}_*.deb in ${debs}`);
    return { ...x, deb };
  });
  const work = join(tmp, 'work');
  await mkdir(work, { recursive: true });
  for (const x of packages) {
    const r = await execa('dpkg-deb', ['-x', join(debs, x.deb), work], { reject: false, all: true });
    if (r.exitCode !== 0) throw new PeerError(`dpkg-deb -x ${x.deb} failed: ${String(r.all ?? '').trim()}`);
  }
  // merged /usr (from 7.3 on) puts the modules under usr/lib/modules
  const modParent = [join(work, 'lib', 'modules'), join(work, 'usr', 'lib', 'modules')].find((d) => existsSync(d));
  const releases = modParent ? await readdir(modParent) : [];
  if (!modParent || releases.length !== 1) throw new PeerError(`${p.name}: expected one lib/modules/<release> in ${files.join(', ')}, found ${releases.length}`);
  const release = releases[0]!;
  const modRoot = join(modParent, release);
  // the kernel: boot/vmlinuz-<release>, or (merged /usr, 7.3's linux-binary) beside the modules
  const boot = [join(work, 'boot'), modRoot].find((d) => existsSync(d) && readdirSafe(d).some((n) => n.startsWith('vmlinuz')));
  const vmlinuz = boot ? readdirSafe(boot).find((n) => n.startsWith('vmlinuz')) : undefined;
  if (!boot || !vmlinuz) throw new PeerError(`${p.name}: no vmlinuz in ${files.join(', ')}`);
  const { byName, builtin, builtinFile } = await moduleIndex(modRoot);
  // dependencies are read from the modules themselves, so only the modules the walk reaches are decompressed
  const bytes = new Map<string, Buffer>();
  for (const want of WANTED_MODULES) {
    const pending = [want.name];
    while (pending.length) {
      const n = pending.pop()!;
      if (bytes.has(n) || builtin.has(n) || !byName.has(n)) continue;
      const b = await moduleBytes(byName.get(n)!);
      bytes.set(n, b);
      pending.push(...moduleDepends(b));
    }
  }
  let order: string[];
  try {
    order = loadOrder(WANTED_MODULES.map((m) => m.name), (n) => (bytes.has(n) ? moduleDepends(bytes.get(n)!) : undefined), builtin);
  } catch (e) {
    if (!(e instanceof TcgHostImageError)) throw e;
    const hint = existsSync(builtinFile) ? '' : ' (the pinned packages have no modules.builtin, so built-in modules look missing: pin the package that ships it too, linux-base-<abi> from 7.3 on)';
    throw new PeerError(`${p.name}: ${e.message}${hint}`);
  }
  const params = new Map(WANTED_MODULES.map((m) => [m.name, m.params]));
  const mods = join(tmp, 'mods');
  await mkdir(mods, { recursive: true });
  const modules: KernelManifest['modules'] = [];
  for (const n of order) {
    const file = basename(byName.get(n)!).replace(/\.(xz|zst|gz)$/, '');
    await writeFile(join(mods, file), bytes.get(n)!);
    modules.push({ file, params: params.get(n) ?? '' });
  }
  await writeFile(join(mods, 'order'), modules.map((m) => `${m.file}${m.params ? ` ${m.params}` : ''}\n`).join(''));
  await copyFile(join(boot, vmlinuz), join(tmp, 'vmlinuz'));
  await rm(work, { recursive: true, force: true });
  const manifest: KernelManifest = { peer: p.name, suite: p.suite, mirror, packages, pinHash: hash, release, modules, fetchedAt: new Date().toISOString() };
  await writeFile(join(tmp, KERNEL_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) await rename(dir, old);
  await mkdir(parent, { recursive: true });
  await rename(tmp, dir);
  await rm(old, { recursive: true, force: true });
  log(`peers: ${p.name}: ${release}, modules ${order.join(' ')}`);
  return { manifest, fetched: true, dir };
}

function readdirSafe(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}
