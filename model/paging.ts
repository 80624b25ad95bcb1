// Paging (APM vol. 2 ch. 5): linear → physical.
//
// Four translation modes, chosen by CR0.PG, CR4.PAE and EFER.LMA (APM vol. 2 5.1, table 5-1):
//   - paging off: linear = physical (32 bits outside long mode);
//   - 32-bit legacy paging (5.2): PD → PT, or a 4 MiB page with CR4.PSE and PDE.PS (PSE-36 high bits);
//   - PAE legacy paging (5.2.3/5.3): PDPT (4 entries at CR3[31:5]) → PD → PT, 2 MiB pages;
//   - long-mode 4-level paging (5.3): PML4 → PDPT → PD → PT, 2 MiB and 1 GiB pages.
//
// Checks (5.6): P, R/W (CR0.WP for supervisor writes), U/S, NX (EFER.NXE), reserved bits.
// A fault throws #PF with the error code of APM vol. 2 8.4.2.
//
// Accessed/dirty bits (5.4.2): the model sets A on every entry of a walk, top level first, and D on
// the final entry of a write, only once the whole translation has passed its checks; a walk that
// faults leaves every entry as it was. (Processors may set A on upper levels of a faulting walk;
// the manual does not require it, and a walk that changes nothing is the deterministic choice.)
// An entry is only written when a bit changes.
//
// Nested paging is not known here (docs/model.md "One-way arrows inside model/": paging must not import SVM). Every guest-physical
// access the walk makes goes through a PhysAccess; the default one is the identity on physical
// memory, and guest mode installs its own with setPhysAccess (NPT: APM vol. 2 15.25.5), which may
// throw (its #VMEXIT(NPF)) from any of the calls.
//
// A TLB caches translations per 4 KiB linear page. It is flushed by CR0/CR3/CR4/EFER writes and
// INVLPG (system.ts calls flushTlb), and, so that no writer of those registers can leave it stale
// (VMRUN, #VMEXIT, tests), a lookup also drops it when any of them, or the PhysAccess, differs from
// the values it was filled under. Guest edits of page tables without INVLPG may be seen late, as on
// hardware.

import type { Cpu } from './cpu/cpu.ts';
import { ACC, EFER_LMA, EFER_NXE, CR0_PG } from './cpu/cpu.ts';
import { Fault } from './cpu/fault.ts';
import { VEC } from '../arch/x86.ts';
import { CPUID_ADDRESS_SIZES, CPUID_EXT_EDX, CPUID_LEAF } from '../arch/cpuid.ts';
import { cpuidOf } from './profile.ts';

// ---- entry bits (APM vol. 2 5.3.3, 5.4) -------------------------------------------------------

const P = 1n;
const RW = 1n << 1n;
const US = 1n << 2n;
const A = 1n << 5n;
const D = 1n << 6n;
const PS = 1n << 7n;
const NX = 1n << 63n;

const CR0_WP = 1n << 16n;
const CR4_PSE = 1n << 4n;
const CR4_PAE = 1n << 5n;

/** #PF error-code bits (APM vol. 2 8.4.2). */
export const PF = { P: 1, W: 2, U: 4, RSV: 8, ID: 16 } as const;

// ---- guest-physical accesses of a walk ----------------------------------------------------------

/**
 * How a walk reaches (guest-)physical memory. Without nested paging every address is itself.
 * A nested layer maps each guest-physical address to a host-physical one, or throws.
 */
export interface PhysAccess {
  /** A paging-structure entry at guest-physical `gpa` (4 or 8 bytes) is read. */
  readPte(cpu: Cpu, gpa: number, size: 4 | 8): bigint;
  /** The walk sets A/D bits: `value` replaces the entry at `gpa`. */
  writePte(cpu: Cpu, gpa: number, size: 4 | 8, value: bigint): void;
  /** The translated guest-physical address → the physical address the access uses (ACC bits). */
  final(cpu: Cpu, gpa: number, access: number): number;
}

export const IDENTITY_PHYS: PhysAccess = {
  readPte: (cpu, gpa, size) => (size === 8 ? cpu.mem.read64(gpa) : BigInt(cpu.mem.read32(gpa))),
  writePte: (cpu, gpa, size, value) => (size === 8 ? cpu.mem.write64(gpa, value) : cpu.mem.write32(gpa, Number(value & 0xffff_ffffn))),
  final: (_cpu, gpa) => gpa,
};

// ---- per-CPU state: the PhysAccess and the TLB ------------------------------------------------------

interface PagingUnit {
  phys: PhysAccess;
  /** Linear page number → packed entry (see pack()). */
  tlb: Map<number, number>;
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
  tlbPhys: PhysAccess;
  /** cr0, cr3, cr4, efer above as 32-bit halves (low first), compared on every translation. */
  filledUnder: Uint32Array;
}

const LOW_CR0_PG = 1 << 31;
/** Scratch for translate: the linear address, CR0, CR3, CR4, EFER (BigUint64Array) and their halves. */
const regs64 = new BigUint64Array(5);
const regs32 = new Uint32Array(regs64.buffer);

const units = new WeakMap<Cpu, PagingUnit>();
let lastCpu: Cpu | undefined;
let lastUnit: PagingUnit | undefined;

function unitOf(cpu: Cpu): PagingUnit {
  if (cpu === lastCpu) return lastUnit!;
  let u = units.get(cpu);
  if (!u) {
    const filled = new BigUint64Array([cpu.cr0, cpu.cr3, cpu.cr4, cpu.efer].map((v) => BigInt.asUintN(64, v)));
    u = { phys: IDENTITY_PHYS, tlb: new Map(), cr0: cpu.cr0, cr3: cpu.cr3, cr4: cpu.cr4, efer: cpu.efer, tlbPhys: IDENTITY_PHYS, filledUnder: new Uint32Array(filled.buffer) };
    units.set(cpu, u);
  }
  lastCpu = cpu;
  lastUnit = u;
  return u;
}

/** Install the guest-physical access path of this CPU (nested paging), or IDENTITY_PHYS to remove it. */
export function setPhysAccess(cpu: Cpu, phys: PhysAccess): void {
  const u = unitOf(cpu);
  u.phys = phys;
  u.tlb.clear();
}

export function physAccessOf(cpu: Cpu): PhysAccess {
  return unitOf(cpu).phys;
}

/** Drop every cached translation (MOV CRn, WRMSR EFER, INVLPG, VMRUN/#VMEXIT, nested-table changes). */
export function flushTlb(cpu: Cpu): void {
  unitOf(cpu).tlb.clear();
}

/** Number of cached translations (for tests and statistics). */
export function tlbSize(cpu: Cpu): number {
  return unitOf(cpu).tlb.size;
}

const TLB_MAX = 8192;

// Packed TLB entry: physical page number * 16 + effective permission bits.
const T_RW = 1;
const T_US = 2;
const T_NX = 4;
const T_D = 8;

// ---- the walk ---------------------------------------------------------------------------------------------

/** Bits above the physical-address width, up to bit 51: reserved in every entry (APM vol. 2 5.3.1). */
function physReservedMask(cpu: Cpu): bigint {
  const width = cpuidOf(cpu.profile, CPUID_LEAF.ADDRESS_SIZES, 0).eax & CPUID_ADDRESS_SIZES.PHYS_WIDTH_MASK || CPUID_ADDRESS_SIZES.DEFAULT_PHYS_WIDTH;
  return ((1n << 52n) - 1n) & ~((1n << BigInt(width)) - 1n);
}

/** 1 GiB pages (CPUID Fn8000_0001 EDX[26] Page1GB). */
function has1GPages(cpu: Cpu): boolean {
  return (cpuidOf(cpu.profile, CPUID_LEAF.EXT_FEATURES, 0).edx & (1 << CPUID_EXT_EDX.PAGE1GB)) !== 0;
}

function pageFault(cpu: Cpu, linear: bigint, access: number, present: boolean, rsv: boolean): Fault {
  let code = 0;
  if (present) code |= PF.P;
  if (access & ACC.WRITE) code |= PF.W;
  if (access & ACC.USER) code |= PF.U;
  if (rsv) code |= PF.RSV;
  // I/D is defined only with no-execute enabled: EFER.NXE = 1 and CR4.PAE = 1 (APM vol. 2 8.4.2)
  if (access & ACC.FETCH && (cpu.efer & EFER_NXE) !== 0n && (cpu.cr4 & CR4_PAE) !== 0n) code |= PF.ID;
  return new Fault(VEC.PF, code, linear);
}

/** Entries walked, for setting A/D once the walk has succeeded (no allocation: fixed slots). */
const walkAddr = [0, 0, 0, 0];
const walkEntry = [0n, 0n, 0n, 0n];
const walkHasA = [true, true, true, true];

/**
 * Linear → physical for an access of kind `access` (ACC bits), or throw #PF. The CpuHooks.translate
 * of a machine. Non-canonical addresses were refused by Cpu.linear (#GP/#SS) before.
 */
export function translate(cpu: Cpu, linear: bigint, access: number): number {
  // the linear address and the registers the TLB depends on, as 32-bit halves: this runs on
  // every memory access, and bigint compares and Number(bigint) cost ten nanoseconds or more
  // each where the halves cost about one (see Cpu low32)
  const k = regs64;
  const k32 = regs32;
  k[0] = linear;
  k[1] = cpu.cr0;
  if ((k32[2]! & LOW_CR0_PG) === 0) {
    const u = unitOf(cpu);
    const lin = k32[0]!;
    return u.phys === IDENTITY_PHYS ? lin : u.phys.final(cpu, lin, access);
  }
  const u = unitOf(cpu);
  k[2] = cpu.cr3;
  k[3] = cpu.cr4;
  k[4] = cpu.efer;
  const f = u.filledUnder;
  if (k32[2] !== f[0] || k32[3] !== f[1] || k32[4] !== f[2] || k32[5] !== f[3] || k32[6] !== f[4] || k32[7] !== f[5] || k32[8] !== f[6] || k32[9] !== f[7] || u.tlbPhys !== u.phys) {
    u.tlb.clear();
    u.cr0 = cpu.cr0; u.cr3 = cpu.cr3; u.cr4 = cpu.cr4; u.efer = cpu.efer; u.tlbPhys = u.phys;
    f.set(k32.subarray(2, 10));
  }
  const vpn = k32[1]! * 0x10_0000 + (k32[0]! >>> 12); // linear >> 12
  const offset = k32[0]! & 0xfff;
  const hit = u.tlb.get(vpn);
  if (hit !== undefined && permitted(cpu, hit, access)) {
    const gpa = Math.floor(hit / 16) * 4096 + offset;
    return u.phys === IDENTITY_PHYS ? gpa : u.phys.final(cpu, gpa, access);
  }
  return walk(cpu, u, linear, vpn, offset, access);
}

/** May a cached translation serve this access without a walk? Otherwise the walk decides (and faults). */
function permitted(cpu: Cpu, e: number, access: number): boolean {
  const user = (access & ACC.USER) !== 0;
  if (user && !(e & T_US)) return false;
  if (access & ACC.WRITE) {
    if (!(e & T_D)) return false;
    if (!(e & T_RW) && (user || (cpu.cr0 & CR0_WP) !== 0n)) return false;
  }
  if (access & ACC.FETCH && e & T_NX) return false;
  return true;
}

function walk(cpu: Cpu, u: PagingUnit, linear: bigint, vpn: number, offset: number, access: number): number {
  const phys = u.phys;
  const pae = (cpu.cr4 & CR4_PAE) !== 0n;
  const long = (cpu.efer & EFER_LMA) !== 0n;
  const nxe = (cpu.efer & EFER_NXE) !== 0n;
  const size: 4 | 8 = pae ? 8 : 4;
  const rsvPhys = pae ? physReservedMask(cpu) : 0n;
  // NX is a reserved bit when EFER.NXE = 0 (APM vol. 2 5.6.1, 5.3.3)
  const rsvCommon = rsvPhys | (pae && !nxe ? NX : 0n);

  let levels: number;
  let table: number;
  if (!pae) {
    levels = 2;
    table = Number(cpu.cr3 & 0xffff_f000n);
  } else if (long) {
    levels = 4;
    table = Number(cpu.cr3 & 0x000f_ffff_ffff_f000n);
  } else {
    levels = 3;
    table = Number(cpu.cr3 & 0xffff_ffe0n);
  }

  let rw = true;
  let us = true;
  let nx = false;
  let n = 0;
  let pageShift = 12;
  let frame = 0; // physical base of the mapped page
  for (let level = levels; level >= 1; level--) {
    // index bits: 9 per level from bit 12 (PAE/long), 10 per level (32-bit); the legacy PAE PDPT has 2
    let index: number;
    if (!pae) index = Number((linear >> BigInt(12 + 10 * (level - 1))) & 0x3ffn);
    else if (levels === 3 && level === 3) index = Number((linear >> 30n) & 3n);
    else index = Number((linear >> BigInt(12 + 9 * (level - 1))) & 0x1ffn);
    const addr = table + index * size;
    const e = phys.readPte(cpu, addr, size);
    if ((e & P) === 0n) throw pageFault(cpu, linear, access, false, false);

    const legacyPdpt = levels === 3 && level === 3;
    walkAddr[n] = addr;
    walkEntry[n] = e;
    walkHasA[n] = !legacyPdpt; // legacy PAE PDPT entries have no A bit (bit 5 is reserved)
    n++;

    // reserved bits of this entry (APM vol. 2 5.3.3 figures 5-9 ff., 5.4 figures 5-18 ff.)
    let rsv = (e & rsvCommon) !== 0n;
    if (legacyPdpt) rsv ||= (e & (NX | 0x1e6n)) !== 0n; // bits 2:1, 8:5 and 63 are reserved in a legacy PDPE
    if (levels === 4 && level === 4) rsv ||= (e & PS) !== 0n; // PML4E bit 7 is reserved (MBZ)
    const large = level === 2 ? (e & PS) !== 0n && (pae || (cpu.cr4 & CR4_PSE) !== 0n)
      : level === 3 && levels === 4 ? (e & PS) !== 0n
        : false;
    if (large) {
      if (!pae) {
        // 4 MiB page: bits 20:13 are physical bits 39:32 (PSE-36 as AMD extends it to 40 bits); bit 21 reserved
        rsv ||= (e & (1n << 21n)) !== 0n;
      } else if (level === 2) {
        rsv ||= (e & 0x1f_e000n) !== 0n; // 2 MiB page: bits 20:13 reserved
      } else {
        rsv ||= !has1GPages(cpu) || (e & 0x3fff_e000n) !== 0n; // 1 GiB page: bits 29:13 reserved
      }
    }
    if (rsv) throw pageFault(cpu, linear, access, true, true);

    if (!legacyPdpt) {
      if ((e & RW) === 0n) rw = false;
      if ((e & US) === 0n) us = false;
      if (pae && (e & NX) !== 0n) nx = true;
    }

    if (large || level === 1) {
      pageShift = 12 + (pae ? 9 : 10) * (level - 1);
      if (!pae && large) {
        frame = Number(e & 0xffc0_0000n) + Number((e >> 13n) & 0xffn) * 0x1_0000_0000;
      } else {
        frame = Number(e & 0x000f_ffff_ffff_f000n & ~((1n << BigInt(pageShift)) - 1n));
      }
      break;
    }
    table = pae ? Number(e & 0x000f_ffff_ffff_f000n) : Number(e & 0xffff_f000n);
  }

  // protection checks (APM vol. 2 5.6): U/S, then R/W, then NX
  const user = (access & ACC.USER) !== 0;
  const write = (access & ACC.WRITE) !== 0;
  if (user && !us) throw pageFault(cpu, linear, access, true, false);
  if (write && !rw && (user || (cpu.cr0 & CR0_WP) !== 0n)) throw pageFault(cpu, linear, access, true, false);
  if (access & ACC.FETCH && nx && nxe) throw pageFault(cpu, linear, access, true, false);

  // A on each level, D on the final entry of a write (APM vol. 2 5.4.2)
  for (let i = 0; i < n; i++) {
    let e = walkEntry[i]!;
    if (walkHasA[i]) e |= A;
    if (i === n - 1 && write) e |= D;
    if (e !== walkEntry[i]) {
      phys.writePte(cpu, walkAddr[i]!, size, e);
      walkEntry[i] = e;
    }
  }
  const dirty = (walkEntry[n - 1]! & D) !== 0n;

  const inPage = Number(linear & BigInt((1 << pageShift) - 1)) - offset; // offset of this 4 KiB page in the large page
  const gpaPage = frame + inPage;
  if (u.tlb.size >= TLB_MAX) u.tlb.clear();
  u.tlb.set(vpn, (gpaPage / 4096) * 16 + ((rw ? T_RW : 0) | (us ? T_US : 0) | (nx && nxe ? T_NX : 0) | (dirty ? T_D : 0)));
  const gpa = gpaPage + offset;
  return phys === IDENTITY_PHYS ? gpa : phys.final(cpu, gpa, access);
}
