// How a pinned peer runs (docs/peers.md "Running a peer"): an emulator from its root under
// build/peers/<suite>/ without chroot and without installing anything, through the root's own
// dynamic loader with the root's libraries, so neither the host's libraries nor its data files
// are used; a kernel from build/peers/kernels/<version>/. Plus each peer's status: installed, or
// missing with the reason and the command that installs it.
//
// The hooks a backend uses: peerLaunch (pure: argv prefix and environment), pinnedLaunch (the
// same for a pin name, or a PeerError saying how to install it), pinnedKernel (a kernel peer's
// files) and peerStatus / peerStatuses (for `svmconf peers` and `svmconf backends`).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { findPeer, kernelVersion, loadPins, PeerError, rootPinHash, rootPins, type PeerKind, type PeerPin, type Pins } from './pins.ts';
import { kernelDir, kernelPinHash, KERNELS_DIR, readKernelManifest, type KernelManifest } from './kernels.ts';
import { PEERS_DIR, readStamp, rootDir, unmetPins } from './roots.ts';

export const INSTALL_COMMAND = 'svmconf peers (or make peers)';

/** The multiarch library directory of an amd64 Debian root. */
const LIBDIR = 'usr/lib/x86_64-linux-gnu';

/** What to execute for an emulator peer: `file` with `args` before the backend's own arguments, in `env`. */
export interface PeerLaunch {
  peer: string;
  kind: Exclude<PeerKind, 'linux'>;
  /** The root's dynamic loader: it runs the binary with the root's libraries. */
  file: string;
  /** Loader options, the peer's binary and (QEMU) its data directories; the backend's arguments follow. */
  args: string[];
  /** Added to the environment (module and plugin directories, data directory, C locale). */
  env: Record<string, string>;
  /** The peer's binary inside the root (as the loader's argument). */
  binary: string;
  /** The arguments that make the binary print its version. */
  versionArgs: string[];
  /** Bochs: the files for the bochsrc's romimage: and vgaromimage: lines, inside the root. */
  bios?: string;
  vgabios?: string;
}

/**
 * The launch of an emulator peer from the root at `root`. Pure. QEMU: the root's
 * qemu-system-x86_64 with -L for its data directory and SeaBIOS's (Debian's QEMU finds the BIOS
 * there), QEMU_MODULE_DIR for its loadable modules. Bochs: bochs-bin with -q (what Debian's
 * /usr/bin/bochs wrapper adds), its plugins via LTDL_LIBRARY_PATH, BXSHARE, and the BIOS and VGA
 * BIOS files the host's backend names (runner/backends/bochs.ts BOCHS_BIOS, BOCHS_VGABIOS) inside the root.
 */
export function peerLaunch(peer: PeerPin, root: string): PeerLaunch {
  const r = (p: string): string => join(root, p);
  const libs = [r(LIBDIR), r('lib/x86_64-linux-gnu')];
  const loader = r(`${LIBDIR}/ld-linux-x86-64.so.2`);
  const loaderArgs = ['--inhibit-cache', '--library-path'];
  if (peer.kind === 'qemu') {
    const binary = r('usr/bin/qemu-system-x86_64');
    return {
      peer: peer.name,
      kind: 'qemu',
      file: loader,
      // QEMU's audio modules link libpulsecommon from its private directory
      args: [...loaderArgs, [...libs, r(`${LIBDIR}/pulseaudio`)].join(':'), binary, '-L', r('usr/share/qemu'), '-L', r('usr/share/seabios')],
      env: { QEMU_MODULE_DIR: r(`${LIBDIR}/qemu`), LC_ALL: 'C' },
      binary,
      versionArgs: ['--version'],
    };
  }
  if (peer.kind === 'bochs') {
    const binary = r('usr/bin/bochs-bin');
    return {
      peer: peer.name,
      kind: 'bochs',
      file: loader,
      args: [...loaderArgs, libs.join(':'), binary, '-q'],
      env: { LTDL_LIBRARY_PATH: r(`${LIBDIR}/bochs/plugins`), BXSHARE: r('usr/share/bochs'), LC_ALL: 'C' },
      binary,
      versionArgs: ['--help'],
      bios: r('usr/share/bochs/BIOS-bochs-latest'),
      vgabios: r('usr/share/seabios/vgabios-isavga.bin'),
    };
  }
  throw new PeerError(`${peer.name} is a kernel, not an emulator: pinnedKernel gives its files`);
}

/** The version in Bochs' banner (`Bochs x86 Emulator 2.7`), e.g. `2.7`; here so that the Bochs backend can import this module. */
export function parseBochsVersion(text: string): string | undefined {
  return /Bochs x86 Emulator (\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

/** The version a peer's binary reports: QEMU's first line, Bochs' `Bochs x86 Emulator N` banner. */
export function parsePeerVersion(kind: PeerKind, output: string): string | undefined {
  if (kind === 'qemu') return /QEMU emulator version [^\n]+/.exec(output)?.[0]?.trim();
  if (kind === 'bochs') {
    const v = parseBochsVersion(output);
    return v ? `Bochs ${v}` : undefined;
  }
  return undefined;
}

/** Run the peer's version command through its launch; the version, or a PeerError with the output. */
export async function peerVersion(l: PeerLaunch): Promise<string> {
  const r = await execa(l.file, [...l.args, ...l.versionArgs], { env: l.env, reject: false, all: true, stdin: 'ignore', timeout: 20_000 });
  const out = String(r.all ?? '');
  const v = parsePeerVersion(l.kind, out);
  if (!v) throw new PeerError(`${l.peer}: ${[l.binary, ...l.versionArgs].join(' ')} printed no version (exit ${r.exitCode}): ${out.trim().split('\n').slice(-3).join(' | ')}`);
  return v;
}

/** A kernel peer's files, for the TCG host's initramfs. */
export interface PeerKernel {
  peer: string;
  dir: string;
  vmlinuz: string;
  /** Directory of the decompressed modules and `order` (one `file [params]` a line). */
  modsDir: string;
  manifest: KernelManifest;
}

export interface PeerStatus {
  name: string;
  kind: PeerKind;
  suite: string;
  installed: boolean;
  /** Why not, when not installed (or what is there). */
  reason: string;
  /** The command that installs it. */
  install: string;
  /** The root or kernel directory. */
  where: string;
  /** The pinned packages with the versions installed (exact Debian versions, for results.json). */
  packages: Record<string, string>;
  launch?: PeerLaunch;
  kernel?: PeerKernel;
}

export interface PeerDirs {
  peers?: string;
  kernels?: string;
}

/** Installed or missing, and why, from the stamp or manifest on disk (runs nothing). */
export function peerStatus(peer: PeerPin, pins: Pins, dirs: PeerDirs = {}): PeerStatus {
  const base = { name: peer.name, kind: peer.kind, suite: peer.suite, install: INSTALL_COMMAND };
  if (peer.kind === 'linux') {
    const dir = kernelDir(peer, dirs.kernels ?? KERNELS_DIR);
    const m = readKernelManifest(dir);
    const missing = (reason: string): PeerStatus => ({ ...base, installed: false, reason, where: dir, packages: {} });
    if (!m) return missing(`not downloaded (${kernelVersion(peer)} from ${peer.suite})`);
    if (m.pinHash !== kernelPinHash(peer, pins.mirror)) return missing('downloaded from other pins: runner/peers/pins.yaml changed since');
    const vmlinuz = join(dir, 'vmlinuz');
    if (!existsSync(vmlinuz)) return missing(`${vmlinuz} is missing`);
    return {
      ...base,
      installed: true,
      reason: `Linux ${m.release}; modules ${m.modules.map((x) => x.file + (x.params ? ` ${x.params}` : '')).join(', ')}`,
      where: dir,
      packages: Object.fromEntries(m.packages.map((x) => [x.package, x.version])),
      kernel: { peer: peer.name, dir, vmlinuz, modsDir: join(dir, 'mods'), manifest: m },
    };
  }
  const root = rootPins(pins).find((r) => r.suite === peer.suite)!;
  const dir = rootDir(peer.suite, dirs.peers ?? PEERS_DIR);
  const stamp = readStamp(dir);
  const missing = (reason: string): PeerStatus => ({ ...base, installed: false, reason, where: dir, packages: {} });
  if (!stamp) return missing(`no ${peer.suite} root`);
  if (stamp.pinHash !== rootPinHash(root)) return missing(`the ${peer.suite} root was built from other pins: runner/peers/pins.yaml changed since`);
  const unmet = unmetPins(peer.packages, stamp.installed);
  if (unmet.length) return missing(`the ${peer.suite} root lacks ${unmet.join(', ')}`);
  const launch = peerLaunch(peer, dir);
  for (const f of [launch.file, launch.binary, ...(launch.bios ? [launch.bios] : []), ...(launch.vgabios ? [launch.vgabios] : [])]) {
    if (!existsSync(f)) return missing(`${f} is missing from the root`);
  }
  return {
    ...base,
    installed: true,
    reason: `in the ${peer.suite} root (built ${stamp.builtAt})`,
    where: dir,
    packages: Object.fromEntries(peer.packages.map((x) => [x.package, stamp.installed[x.package]!])),
    launch,
  };
}

/** Every pinned peer's status, in pin-file order. */
export function peerStatuses(pins: Pins = loadPins(), dirs: PeerDirs = {}): PeerStatus[] {
  return pins.peers.map((p) => peerStatus(p, pins, dirs));
}

function installedOrThrow(name: string, pins: Pins, dirs: PeerDirs): PeerStatus {
  const s = peerStatus(findPeer(pins, name), pins, dirs);
  if (!s.installed) throw new PeerError(`${name} is not installed: ${s.reason}; run ${s.install}`);
  return s;
}

/** How to launch the emulator peer `name` (qemu@11.1, bochs@3.1); PeerError with the install command when it is not installed. */
export function pinnedLaunch(name: string, pins: Pins = loadPins(), dirs: PeerDirs = {}): PeerLaunch {
  const s = installedOrThrow(name, pins, dirs);
  if (!s.launch) throw new PeerError(`${name} is a kernel: use pinnedKernel`);
  return s.launch;
}

/** The files of the kernel peer `name` (linux@7.3); PeerError with the install command when it is not downloaded. */
export function pinnedKernel(name: string, pins: Pins = loadPins(), dirs: PeerDirs = {}): PeerKernel {
  const s = installedOrThrow(name, pins, dirs);
  if (!s.kernel) throw new PeerError(`${name} is an emulator: use pinnedLaunch`);
  return s.kernel;
}
