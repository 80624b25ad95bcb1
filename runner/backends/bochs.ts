// Bochs as a backend, in two flavours that differ by the CPU model Bochs emulates:
//   bochs-ryzen   `cpu: model=ryzen`                 family 17h (Zen 1), SVM with NRIPS
//   bochs-phenom  `cpu: model=phenom_8650_toliman`   family 10h (K10 rev. B3), SVM without NRIPS
// Bochs' CPU models have a fixed CPUID, so nothing can be hidden from them: a case that needs a
// feature absent runs only on the flavour that lacks it, and each flavour's column is compared
// with the model under the profile of the same family (`referenceProfile`).
//
// Two sources of Bochs: the host's (`bochs` on PATH, Bochs 2.7 on Debian 12: columns bochs-ryzen,
// bochs-phenom) and each pinned peer (runner/peers/pins.yaml, kind bochs: columns
// bochs-ryzen@3.1, bochs-phenom@3.1), run from its root through runner/peers/launch.ts
// (docs/peers.md "Running a peer"). The same boot on both.
//
// One boot = one Bochs process, headless (docs/tools.md "Bochs"): Debian's Bochs has no
// `nogui` display library, so it draws to an rfb display inside a private network namespace
// (`unshare -rn`: the rfb port listens nowhere) and its built-in debugger is told to continue,
// then quit. Bochs has no multiboot loader either: a boot sector on a floppy image
// (runner/bochs/boot.S) reads the kernel's flat image from the floppy's next sectors, copies it to
// its link address and does what a multiboot loader does, command line included. COM1 goes to a
// file, read as it grows; the kernel leaves by writing "Shutdown" to port 0x8900 (docs/protocol.md, END).

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Backend, BootRequest, BootResult } from '../backend.ts';
import { BootWatch, bootCases } from '../lines.ts';
import { withParentDeath } from '../pdeath.ts';
import { readElf32 } from '../../core/elf32.ts';
import type { BackendInfo, Feature } from '../../core/types.ts';
import { columnName } from '../../core/columns.ts';
import { CMDLINE_MAX, GUEST_RAM_MIB, KERNEL_LOAD_ADDR } from '../../generator/layout.ts';
import { sha256 } from '../../generator/toolchain.ts';
import { sealEntry, tempPath, verifyEntry } from '../../generator/cache.ts';
import { svmEdx } from '../../model/profiles/cpuid.ts';
import { realHostFs, unavailableFeatures, type HostFs } from '../probe.ts';
import { parseBochsVersion, peerStatus, pinnedLaunch, peerVersion, type PeerDirs, type PeerLaunch } from '../peers/launch.ts';
import { loadPins, PeerError, type PeerPin, type Pins } from '../peers/pins.ts';

export { parseBochsVersion };

export const BOCHS_BINARY = 'bochs';
export const UNSHARE_BINARY = 'unshare';
export const UNSHARE_NOT_FOUND = 'unshare not found (it gives the headless rfb display a private network namespace): apt-get install util-linux';
export const BOCHS_NOT_FOUND = 'bochs not found: apt-get install bochs bochsbios vgabios seabios (or run make setup)';

/** The system BIOS (package bochsbios) and a VGA BIOS whose file exists (vgabios' default link dangles: docs/tools.md "Bochs"). */
export const BOCHS_BIOS = { file: '/usr/share/bochs/BIOS-bochs-latest', pkg: 'bochsbios' } as const;
export const BOCHS_VGABIOS = { file: '/usr/share/seabios/vgabios-isavga.bin', pkg: 'seabios' } as const;

/** The boot sector's source, assembled at run time (runner/bochs/boot.S). */
export const BOOT_SECTOR_SOURCE = join(import.meta.dirname, '..', 'bochs', 'boot.S');

/**
 * Where things go in the boot sector and in guest memory; passed to the assembler as --defsym, so
 * they live here only. The BIOS loads a boot sector at 0x7c00; the entry point is patched at
 * ENTRY_OFF, the image's length in sectors at SECTORS_OFF and the command line at CMDLINE_OFF (up
 * to the signature at 510). BUF_SEG is the real-mode segment the sector reads the image to
 * (0x10000, above the sector and its stack) before it copies it to KERNEL_LOAD_ADDR.
 */
export const BOOT_SECTOR = {
  LOAD_ADDR: 0x7c00,
  SIZE: 512,
  SECTORS_OFF: 0xf8,
  ENTRY_OFF: 0xfc,
  CMDLINE_OFF: 0x100,
  CMDLINE_END: 0x1fe,
  BUF_SEG: 0x1000,
} as const;

/** A 1.44 MB floppy (`floppya: 1_44=`): 80 cylinders, 2 heads, 18 sectors of 512 bytes a track. */
export const FLOPPY = { CYLINDERS: 80, HEADS: 2, SPT: 18, SECTOR: 512 } as const;
const FLOPPY_BYTES = FLOPPY.CYLINDERS * FLOPPY.HEADS * FLOPPY.SPT * FLOPPY.SECTOR;

/**
 * Multiboot mem_lower / mem_upper in KiB (Multiboot Specification 3.3): conventional memory below
 * 640 KiB, and the memory from 1 MiB to the first hole (all of it above 1 MiB here).
 */
export const MEM_LOWER_KB = 639;
export const MEM_UPPER_KB = GUEST_RAM_MIB * 1024 - 1024;

/**
 * The most sectors of flat image the boot sector can load: the floppy after its boot sector, and
 * conventional memory from BUF_SEG to the end of mem_lower (the EBDA above it is the BIOS's).
 */
export const MAX_IMAGE_SECTORS = Math.min(
  FLOPPY_BYTES / FLOPPY.SECTOR - 1,
  Math.floor((MEM_LOWER_KB * 1024 - BOOT_SECTOR.BUF_SEG * 16) / FLOPPY.SECTOR),
);

/**
 * Emulated instructions per second, the clock that turns the BIOS's timed waits into instructions.
 * 4,000,000 is Bochs 2.7's default (config.cc); Bochs 3.1 made it 50,000,000, which spends 12
 * times the instructions on the same waits (docs/backends/bochs.md "The 3.1 columns"). Written
 * out, so every version boots with the same clock.
 */
export const BOCHS_IPS = 4_000_000;

export type BochsFlavour = 'ryzen' | 'phenom';

export interface FlavourSpec {
  name: string;
  /** `cpu: model=` */
  cpuModel: string;
  /** The model profile of the same family, the reference this column is compared with. */
  referenceProfile: string;
  /** What the CPU model's fixed CPUID shows (8000_0001 ECX, 8000_000A EDX). */
  features: Record<Feature, boolean>;
  /** CPUID 8000_000A EDX of the CPU model in the host's Bochs 2.7 (other versions: BOCHS_SVM_EDX). */
  svmEdx: number;
  /** For the reason texts. */
  part: string;
}

/**
 * The two flavours. Bochs 2.7 cpu/cpudb/amd/ryzen.cc reports family 17h model 01h with 8000_000A
 * EDX 0x44f (NP, LBRV, SVML, NRIPS, FLUSH_BY_ASID, PAUSE_FILTER; docs/tools.md "Bochs");
 * phenomx3_8650_toliman.cc family 10h model 02h with EDX 0x7 (NP, LBRV, SVML), as the amd-10h
 * profile (which was measured from that very file).
 */
export const BOCHS_FLAVOURS: Readonly<Record<BochsFlavour, FlavourSpec>> = {
  ryzen: {
    name: 'bochs-ryzen',
    cpuModel: 'ryzen',
    referenceProfile: 'amd-17h',
    features: { svm: true, npt: true, nrips: true },
    svmEdx: 0x44f,
    part: 'Bochs cpu model ryzen (family 17h)',
  },
  phenom: {
    name: 'bochs-phenom',
    cpuModel: 'phenom_8650_toliman',
    referenceProfile: 'amd-10h',
    features: { svm: true, npt: true, nrips: false },
    svmEdx: 0x7,
    part: 'Bochs cpu model phenom_8650_toliman (family 10h)',
  },
};

/**
 * CPUID 8000_000A EDX of each CPU model per Bochs version: the model of a column's reference shows
 * only these. Bochs 2.7 is BOCHS_FLAVOURS' own; 3.1's ryzen adds the pause filter threshold
 * (bit 12; cpu/cpudb/amd/ryzen.cc get_svm_extensions_bitmask, commit 1519744a7 of February 2026),
 * its phenom is unchanged (phenomx3_8650_toliman.cc). A version missing here makes its columns
 * unavailable with that reason, so a new pin gets its row before its first run.
 */
export const BOCHS_SVM_EDX: Readonly<Record<string, Readonly<Record<BochsFlavour, number>>>> = {
  '2.7': { ryzen: BOCHS_FLAVOURS.ryzen.svmEdx, phenom: BOCHS_FLAVOURS.phenom.svmEdx },
  '3.1': { ryzen: svmEdx(['NP', 'LBRV', 'SVML', 'NRIPS', 'FLUSH_BY_ASID', 'PAUSE_FILTER', 'PAUSE_FILTER_THRESHOLD']), phenom: svmEdx(['NP', 'LBRV', 'SVML']) },
};

/** A pinned Bochs peer a column runs (runner/peers/pins.yaml). */
export interface BochsPeerOption {
  pin: PeerPin;
  pins: Pins;
  dirs?: PeerDirs;
}

export interface BochsBackendOptions {
  flavour: BochsFlavour;
  binary?: string;
  /** Run this pinned peer from its root instead of the host's Bochs; the column is `<flavour>@<version>`. */
  peer?: BochsPeerOption;
  /** Where the assembled boot sector is cached (default build/bochs under the repository). */
  cacheDir?: string;
  /** Keep each boot's directory (bochsrc, logs, COM1) for inspection instead of removing it. */
  keepFiles?: boolean;
  /** How often the COM1 file is read while Bochs runs. */
  pollMs?: number;
  fs?: HostFs;
  /** Command used to enter a private network namespace; tests replace it. */
  unshare?: { file: string; args: string[] };
}

export interface BochsBackend extends Backend {
  /** The model profile this column is compared with. */
  readonly referenceProfile: string;
  /** The SVM features (8000_000A EDX) the reference profile keeps: those the CPU model shows. */
  readonly referenceSvmEdx: number;
}

/**
 * The bochsrc of one boot. Paths are relative to the boot's directory (Bochs runs there), the BIOS
 * files are the host's unless given (a peer's root). The kernel is on the floppy after the boot sector.
 */
export function bochsrc(
  o: { cpuModel: string; com1: string; log: string; megs: number; bios?: string; vgabios?: string; ips?: number }
    & ({ floppy: string; cdrom?: never } | { cdrom: string; floppy?: never }),
): string {
  return [
    `megs: ${o.megs}`,
    `cpu: model=${o.cpuModel}, ips=${o.ips ?? BOCHS_IPS}`,
    `romimage: file=${o.bios ?? BOCHS_BIOS.file}`,
    `vgaromimage: file=${o.vgabios ?? BOCHS_VGABIOS.file}`,
    // headless: an rfb display that waits for no client, inside a network namespace of its own
    'display_library: rfb, options="timeout=0"',
    // the suite's kernels boot from a floppy (runner/bochs/boot.S); an ISO (runner/kvmbochs/) from a CD
    ...(o.cdrom !== undefined ? [`ata0-master: type=cdrom, path=${o.cdrom}, status=inserted`, 'boot: cdrom'] : [`floppya: 1_44=${o.floppy}, status=inserted`, 'boot: floppy']),
    `com1: enabled=1, mode=file, dev=${o.com1}`,
    `log: ${o.log}`,
    // a panic (the shutdown port's "Shutdown" is one) ends Bochs; errors are logged and go on
    'panic: action=fatal',
    'error: action=report',
    'sound: driver=dummy',
    'speaker: enabled=0',
    '',
  ].join('\n');
}

/** The debugger script: continue until the machine stops, then quit. */
export const DEBUGGER_SCRIPT = 'c\nq\n';

/** The ELF32 entry point and the lowest PT_LOAD physical address of a multiboot kernel. */
export function elf32Layout(elf: Uint8Array): { entry: number; loadBase: number } {
  const { entry, segments } = readElf32(elf);
  if (segments.length === 0) throw new Error('the ELF has no PT_LOAD segment');
  return { entry, loadBase: Math.min(...segments.map((p) => p.paddr)) };
}

/** The boot sector with a kernel's entry point, image length in sectors and command line patched in. */
export function patchBootSector(sector: Uint8Array, entry: number, sectors: number, cmdline: string): Uint8Array {
  const room = BOOT_SECTOR.CMDLINE_END - BOOT_SECTOR.CMDLINE_OFF - 1;
  const bytes = Buffer.from(cmdline, 'latin1');
  if (bytes.length > room || bytes.length >= CMDLINE_MAX) throw new Error(`command line too long for the boot sector (${bytes.length} > ${room} bytes)`);
  if (!Number.isInteger(sectors) || sectors < 1 || sectors > MAX_IMAGE_SECTORS) {
    throw new Error(`a flat image of ${sectors} sectors does not fit the boot sector's loader (1 to ${MAX_IMAGE_SECTORS} sectors of ${FLOPPY.SECTOR} bytes)`);
  }
  const out = Uint8Array.from(sector);
  new DataView(out.buffer).setUint32(BOOT_SECTOR.ENTRY_OFF, entry >>> 0, true);
  new DataView(out.buffer).setUint16(BOOT_SECTOR.SECTORS_OFF, sectors, true);
  out.fill(0, BOOT_SECTOR.CMDLINE_OFF, BOOT_SECTOR.CMDLINE_END);
  out.set(bytes, BOOT_SECTOR.CMDLINE_OFF);
  return out;
}

/**
 * The floppy image of one boot: the patched boot sector, then the flat image from the second sector
 * on (what the boot sector reads), zeros to the floppy's size.
 */
export function floppyImage(sector: Uint8Array, entry: number, image: Uint8Array, cmdline: string): Buffer {
  const sectors = Math.ceil(image.length / FLOPPY.SECTOR);
  const floppy = Buffer.alloc(FLOPPY_BYTES);
  floppy.set(patchBootSector(sector, entry, sectors, cmdline), 0);
  floppy.set(image, FLOPPY.SECTOR);
  return floppy;
}

/** The kernel command line of a boot (docs/protocol.md). */
export function commandLine(start: number, end?: number): string {
  return end === undefined ? `start=${start}` : `start=${start} end=${end}`;
}

/**
 * The floppy image that boots `kernel` with `cmdline` (the boot sector assembled once per cache
 * directory, the kernel's flat image after it). Exported so that a reproducer (suite/repro.ts)
 * writes the very image a boot uses.
 */
export async function kernelFloppy(kernel: { elf: string; bin: string }, cmdline: string, cacheDir: string): Promise<Buffer> {
  const [sector, elf, image] = await Promise.all([bootSector(cacheDir), readFile(kernel.elf), readFile(kernel.bin)]);
  const { entry, loadBase } = elf32Layout(elf);
  if (loadBase !== KERNEL_LOAD_ADDR) {
    throw new Error(`${kernel.elf}: first PT_LOAD at 0x${loadBase.toString(16)}, but the flat image is loaded at 0x${KERNEL_LOAD_ADDR.toString(16)}`);
  }
  return floppyImage(sector, entry, image, cmdline);
}

/** Where the assembled boot sector is cached unless BochsBackendOptions.cacheDir says otherwise. */
export const BOCHS_CACHE_DIR = join(import.meta.dirname, '..', '..', 'build', 'bochs');

const buildCache = new Map<string, Promise<Uint8Array>>();

/** Assemble runner/bochs/boot.S once per cache directory and source (GNU as, ld, objcopy). */
export function bootSector(cacheDir: string): Promise<Uint8Array> {
  let p = buildCache.get(cacheDir);
  if (!p) {
    p = assembleBootSector(cacheDir);
    p.catch(() => buildCache.delete(cacheDir));
    buildCache.set(cacheDir, p);
  }
  return p;
}

async function assembleBootSector(cacheDir: string): Promise<Uint8Array> {
  const source = await readFile(BOOT_SECTOR_SOURCE, 'utf8');
  const defs: Record<string, number> = {
    LOAD_ADDR: BOOT_SECTOR.LOAD_ADDR,
    ENTRY_OFF: BOOT_SECTOR.ENTRY_OFF,
    SECTORS_OFF: BOOT_SECTOR.SECTORS_OFF,
    CMDLINE_OFF: BOOT_SECTOR.CMDLINE_OFF,
    CMDLINE_END: BOOT_SECTOR.CMDLINE_END,
    MEM_LOWER_KB,
    MEM_UPPER_KB,
    BUF_SEG: BOOT_SECTOR.BUF_SEG,
    KERNEL_LOAD_ADDR,
    FLOPPY_SPT: FLOPPY.SPT,
    FLOPPY_HEADS: FLOPPY.HEADS,
  };
  const defsym = Object.entries(defs).flatMap(([k, v]) => ['--defsym', `${k}=${v}`]);
  const dir = join(cacheDir, sha256('bochs-boot', source, JSON.stringify(defs)));
  const out = join(dir, 'boot.bin');
  // reused only when it still has the hash written with it (generator/cache.ts)
  const manifest = join(dir, 'manifest.sha256.json');
  if (await verifyEntry(manifest, [out])) return new Uint8Array(await readFile(out));
  await mkdir(dir, { recursive: true });
  const obj = join(dir, 'boot.o');
  const elf = join(dir, 'boot.elf');
  await execa('as', ['--32', '--fatal-warnings', ...defsym, '-o', obj, BOOT_SECTOR_SOURCE]);
  await execa('ld', ['-m', 'elf_i386', '-nostdlib', `-Ttext=0x${BOOT_SECTOR.LOAD_ADDR.toString(16)}`, '-o', elf, obj]);
  const tmp = tempPath(out);
  await execa('objcopy', ['-O', 'binary', elf, tmp]);
  const bin = new Uint8Array(await readFile(tmp));
  if (bin.length !== BOOT_SECTOR.SIZE || bin[510] !== 0x55 || bin[511] !== 0xaa) {
    throw new Error(`${BOOT_SECTOR_SOURCE}: the boot sector is ${bin.length} bytes or lacks its signature`);
  }
  await rename(tmp, out);
  await sealEntry(manifest, [out]);
  return bin;
}

export interface BochsExitFacts {
  exitCode?: number;
  signal?: string;
  /** Bochs' stdout and stderr (its exit message is there). */
  output: string;
  /** The end of bochs.log. */
  log: string;
  killedFor?: 'timeout';
  /** With killedFor timeout: which limit (runner/lines.ts BootWatch), else the idle timeout. */
  timeoutDetail?: string;
  spawnError?: string;
  idleTimeoutMs: number;
}

/** The message Bochs prints when a panic ends it ("Bochs is exiting with the following message"). */
export function bochsExitMessage(output: string): string | undefined {
  const m = /Bochs is exiting with the following message:\s*\n\s*\[([^\]]*)\]\s*(.*)/.exec(output);
  return m ? `${m[1]!.trim()}: ${m[2]!.trim()}` : undefined;
}

/** Turn how Bochs ended into a BootResult's end and detail. Pure, so tests can check each way. */
export function classifyBochsExit(x: BochsExitFacts): Pick<BootResult, 'end' | 'detail'> {
  if (x.spawnError !== undefined) return { end: 'crashed', detail: `failed to launch: ${x.spawnError}` };
  if (x.killedFor === 'timeout') return { end: 'timeout', detail: x.timeoutDetail ?? `no valid protocol line for ${x.idleTimeoutMs / 1000} s; Bochs killed` };
  const message = bochsExitMessage(x.output);
  if (message !== undefined && /Shutdown port: shutdown requested/.test(message)) {
    return { end: 'exited', detail: 'shutdown port 0x8900' };
  }
  // A triple fault resets the machine (exception.cc: "3rd exception with no resolution … resetting");
  // the debugger stops at the reset and, reading end of input, quits.
  const triple = /exception\(\): 3rd \((\d+)\) exception with no resolution/.exec(x.log);
  if (triple) return { end: 'crashed', detail: `triple fault (reset; third exception vector ${triple[1]})` };
  if (message !== undefined) return { end: 'crashed', detail: `Bochs panic: ${message}` };
  const how = x.exitCode !== undefined ? `exit status ${x.exitCode}` : `killed by ${x.signal ?? 'a signal'}`;
  const last = x.output.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^\(\d+\)|^Next at|^<bochs/.test(l)).slice(-2).join(' | ');
  return { end: 'crashed', detail: `Bochs stopped (${how})${last ? `: ${last}` : ''}` };
}

/** The last `max` bytes of a file, or '' when it does not exist. */
async function tail(path: string, max: number): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - max);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('latin1');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

const DEFAULT_UNSHARE = { file: UNSHARE_BINARY, args: ['-rn'] };

export function bochsBackend(opts: BochsBackendOptions): BochsBackend {
  const spec = BOCHS_FLAVOURS[opts.flavour];
  const peer = opts.peer;
  // a peer's column is its flavour's at that version; the registry matches the family (BackendInfo.family)
  const name = peer ? columnName(spec.name, peer.pin.short) : spec.name;
  const svmEdxRow = peer ? BOCHS_SVM_EDX[peer.pin.short] : undefined;
  const referenceSvmEdx = svmEdxRow?.[opts.flavour] ?? spec.svmEdx;
  const binary = opts.binary ?? BOCHS_BINARY;
  const cacheDir = opts.cacheDir ?? BOCHS_CACHE_DIR;
  const pollMs = opts.pollMs ?? 20;
  const fs = opts.fs ?? realHostFs;
  let unshare = opts.unshare ?? DEFAULT_UNSHARE;
  let launch: PeerLaunch | undefined;

  /** The peer's launch (runner/peers/launch.ts); a PeerError naming the install command when it is not installed. */
  const peerLaunchOf = (p: BochsPeerOption): PeerLaunch => (launch ??= pinnedLaunch(p.pin.name, p.pins, p.dirs));

  async function probe(): Promise<BackendInfo> {
    const which = peer ? { family: spec.name, peer: peer.pin.name } : {};
    const unavailable = (reason: string, version?: string): BackendInfo => ({
      name, kind: 'emulator', available: false, reason, features: unavailableFeatures(reason), ...(version ? { version } : {}), ...which,
    });
    let shown: string | undefined;
    let packages: Record<string, string> | undefined;
    if (peer) {
      try {
        const l = peerLaunchOf(peer);
        packages = peerStatus(peer.pin, peer.pins, peer.dirs).packages;
        shown = await peerVersion(l);
      } catch (e) {
        if (e instanceof PeerError) return unavailable(e.message);
        throw e;
      }
      if (!svmEdxRow) {
        return unavailable(`the SVM features (CPUID 8000_000A EDX) of Bochs ${peer.pin.short}'s ${spec.cpuModel} are not known: add the version to BOCHS_SVM_EDX in runner/backends/bochs.ts, read from its cpu/cpudb/amd/ sources`, shown);
      }
    } else {
      const path = await fs.which(binary);
      if (path === undefined) return unavailable(binary === BOCHS_BINARY ? BOCHS_NOT_FOUND : `${binary} not found`);
      for (const f of [BOCHS_BIOS, BOCHS_VGABIOS]) {
        if ((await fs.readText(f.file)) === undefined) return unavailable(`${f.file} not found: apt-get install ${f.pkg}`);
      }
      const v = await execa(path, ['--help'], { reject: false, stdin: 'ignore', all: true, timeout: 20_000 });
      const version = parseBochsVersion(String(v.all ?? ''));
      shown = version ? `Bochs ${version}` : undefined;
    }
    // The rfb display listens on a TCP port: only inside a network namespace of its own.
    // a missing unshare is a missing tool, not a namespace permission
    if (!opts.unshare && (await fs.which(UNSHARE_BINARY)) === undefined) return unavailable(UNSHARE_NOT_FOUND, shown);
    if (!opts.unshare) {
      const tries = [DEFAULT_UNSHARE, { file: UNSHARE_BINARY, args: ['-n'] }];
      const errors: string[] = [];
      let ok = false;
      for (const t of tries) {
        const r = await execa(t.file, [...t.args, 'true'], { reject: false, stdin: 'ignore', all: true, timeout: 20_000 });
        if (r.exitCode === 0) {
          unshare = t;
          ok = true;
          break;
        }
        errors.push(`${t.file} ${t.args.join(' ')}: ${String(r.all ?? '').trim() || `exit status ${r.exitCode}`}`);
      }
      if (!ok) {
        return unavailable(`cannot enter a private network namespace for the headless rfb display (${errors.join('; ')}): allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run as root`, shown);
      }
    }
    const features = {} as BackendInfo['features'];
    for (const f of ['svm', 'npt', 'nrips'] as Feature[]) {
      const has = spec.features[f];
      features[f] = {
        present: has,
        // a Bochs CPU model's CPUID is fixed (the cpuid options apply to model=corei7… only when no model is named)
        absent: !has,
        reason: has ? `${spec.part} has ${f} and cannot hide it` : `${spec.part} has no ${f}`,
      };
    }
    return { name, kind: 'emulator', available: true, reason: '', features, ...(shown ? { version: shown } : {}), ...which, ...(packages ? { packages } : {}) };
  }

  async function boot(req: BootRequest): Promise<BootResult> {
    req.signal?.throwIfAborted();
    const t0 = performance.now();
    const l = peer ? peerLaunchOf(peer) : undefined;
    const floppy = await kernelFloppy(req.kernel, commandLine(req.start, req.end), cacheDir);
    const dir = await mkdtemp(join(tmpdir(), `svmconf-${name}-`));
    try {
      const files = { cpuModel: spec.cpuModel, floppy: 'floppy.img', com1: 'com1.out', log: 'bochs.log', megs: GUEST_RAM_MIB };
      await Promise.all([
        writeFile(join(dir, 'floppy.img'), floppy),
        writeFile(join(dir, 'bochsrc'), bochsrc(l?.bios && l.vgabios ? { ...files, bios: l.bios, vgabios: l.vgabios } : files)),
        writeFile(join(dir, 'dbg.rc'), DEBUGGER_SCRIPT),
        writeFile(join(dir, 'com1.out'), ''),
      ]);
      return await runBochs(dir, req, t0, l);
    } finally {
      if (!opts.keepFiles) await rm(dir, { recursive: true, force: true });
    }
  }

  async function runBochs(dir: string, req: BootRequest, t0: number, l: PeerLaunch | undefined): Promise<BootResult> {
    const watch = new BootWatch({
      idleTimeoutMs: req.idleTimeoutMs, cases: bootCases(req), vmm: 'Bochs', timers: false,
      ...(req.onLine ? { onLine: req.onLine } : {}),
    });
    const lines = watch.lines;
    let output = '';
    let offset = 0;
    let killedFor: 'timeout' | 'abort' | undefined;

    // Own process group, so a timeout kills unshare, Bochs and anything Bochs started at once.
    // setpriv after unshare: unshare -r changes credentials, which clears a parent-death signal (runner/pdeath.ts)
    // a peer's launch args already end with the binary and -q (runner/peers/launch.ts)
    const bochsArgs = ['-f', 'bochsrc', '-rc', 'dbg.rc'];
    const vmm = l ? withParentDeath(l.file, [...l.args, ...bochsArgs]) : withParentDeath(binary, ['-q', ...bochsArgs]);
    const child = spawn(unshare.file, [...unshare.args, vmm.file, ...vmm.args], {
      cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(l ? { env: { ...process.env, ...l.env } } : {}),
    });
    const collect = (chunk: Buffer): void => {
      if (output.length < 256 * 1024) output += chunk.toString('latin1');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const exited = new Promise<{ code?: number; signal?: string; error?: string }>((resolve) => {
      child.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? String(e) }));
      child.on('close', (code, signal) => resolve({ ...(code !== null ? { code } : {}), ...(signal !== null ? { signal } : {}) }));
    });
    const killGroup = (why: 'timeout' | 'abort'): void => {
      if (killedFor !== undefined) return;
      killedFor = why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };

    const com1 = join(dir, 'com1.out');
    const readNew = async (): Promise<void> => {
      const fh = await open(com1, 'r').catch(() => undefined);
      if (!fh) return;
      try {
        for (;;) {
          const buf = Buffer.alloc(64 * 1024);
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          watch.push(buf.subarray(0, bytesRead).toString('latin1')); // runner/lines.ts: why latin1
          if (watch.expired !== undefined) break;
        }
      } finally {
        await fh.close();
      }
    };

    const onAbort = (): void => killGroup('abort');
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let done = false;
    const ended = exited.then((r) => {
      done = true;
      return r;
    });
    try {
      while (!done) {
        await Promise.race([ended, new Promise((r) => setTimeout(r, pollMs))]);
        await readNew();
        if (!done && watch.check() !== undefined) killGroup('timeout');
      }
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
    }
    const r = await ended;
    await readNew();
    watch.end(); // a line cut short: the parser says so
    if (killedFor === 'abort') throw req.signal?.reason ?? new Error('boot aborted');
    const log = await tail(join(dir, 'bochs.log'), 64 * 1024);
    const { end, detail } = classifyBochsExit({
      ...(r.code !== undefined ? { exitCode: r.code } : {}),
      ...(r.signal !== undefined ? { signal: r.signal } : {}),
      ...(r.error !== undefined ? { spawnError: r.error === 'ENOENT' ? `${unshare.file} not found` : r.error } : {}),
      ...(killedFor === 'timeout' ? { killedFor } : {}),
      ...(watch.expired !== undefined ? { timeoutDetail: watch.expired } : {}),
      output,
      log,
      idleTimeoutMs: req.idleTimeoutMs,
    });
    return { end, lines, detail, seconds: (performance.now() - t0) / 1000 };
  }

  return { name, kind: 'emulator', referenceProfile: spec.referenceProfile, referenceSvmEdx, probe, boot };
}

/** Both flavours of the host's Bochs, in matrix column order. */
export function bochsBackends(opts: Omit<BochsBackendOptions, 'flavour' | 'peer'> = {}): BochsBackend[] {
  return (Object.keys(BOCHS_FLAVOURS) as BochsFlavour[]).map((flavour) => bochsBackend({ ...opts, flavour }));
}

/**
 * One column per flavour for each pinned Bochs peer (runner/peers/pins.yaml, kind bochs), in pin
 * order: `bochs-ryzen@3.1`, `bochs-phenom@3.1`. A peer not installed is still listed; its probe
 * says why and how to install it (as qemuPeerBackends, runner/backends/qemu.ts).
 */
export function bochsPeerBackends(opts: Omit<BochsBackendOptions, 'flavour' | 'peer' | 'binary'> & { pins?: Pins; dirs?: PeerDirs } = {}): BochsBackend[] {
  const { pins: given, dirs, ...rest } = opts;
  const pins = given ?? loadPins();
  return pins.peers
    .filter((p) => p.kind === 'bochs')
    .flatMap((pin) => (Object.keys(BOCHS_FLAVOURS) as BochsFlavour[]).map((flavour) => bochsBackend({ ...rest, flavour, peer: { pin, pins, ...(dirs ? { dirs } : {}) } })));
}
