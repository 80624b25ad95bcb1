// Nested paging (APM vol. 2 15.25): the PhysAccess (model/paging.ts) a guest runs under when
// NP_ENABLE is set. Every guest-physical address — each guest page-table entry the guest walk reads
// or writes, and the final address of the access — is translated to a system-physical address by a
// walk of the nested tables rooted at nCR3, or a NestedPageFault is thrown (→ #VMEXIT(NPF)).
//
// The nested walk (15.25.3: "the extra translation uses the same paging mode as the VMM used when
// it executed the most recent VMRUN"): svmconf's hosts run in long mode, so the nested tables are
// 4-level (PML4 → PDPT → PD → PT, 2 MiB and 1 GiB pages; APM vol. 2 5.3). The host's EFER.NXE
// decides whether NX exists at the nested level (15.25.7); the host's CR0.WP is ignored (15.25.7)
// and does not matter anyway, because every nested access is a user access (15.25.6: "nested page
// table accesses performed by the MMU are treated as user accesses").
//
// Access kinds at the nested level (15.25.5):
//  - the guest's page-table accesses are user *writes* ("table walks for guest page tables are
//    always treated as user writes at the nested page table level"), so the nested leaf gets A and
//    D ("the dirty and accessed bits are always set in the nested page table entries that were
//    touched during nested page table walks for guest page table entries"); a fault sets
//    EXITINFO1 bit 33. Read Only Guest Page Tables (ROGPT, 15.25.5) is not modelled.
//  - the final access is a user access of its real type (data read, data write, code read); a
//    fault sets bit 32.
// Checks and A/D bits of a nested walk are those of model/paging.ts (APM vol. 2 5.6, 5.4.2): P and
// reserved bits level by level, then U/S, R/W and NX on the combined permissions; A on every level
// and D on the leaf of a write, written only once the walk has passed its checks (a faulting walk
// changes nothing). Ordering (15.25.6): paging.ts reads a guest entry through readPte before it
// looks at it, so a nested fault on a guest walk entry comes before the guest #PF of that level,
// and the final translation comes after the guest's permission checks.
//
// EXITINFO1 (15.25.6; docs/svm-rules.md "Nested page faults"): P (0) = the nested entry was present, RW (1) = write, US (2)
// = 1 always, RSV (3) = reserved bits in the nested entry, ID (4) = a code read (final access only:
// walk accesses are data writes), bit 32 final address, bit 33 guest page-table access. EXITINFO2
// = the exact faulting guest-physical address (not page-aligned).
// Decision: ID is set for every final code read, whatever the host's EFER.NXE — 15.25.6 states it
// without the NXE condition that 8.4.2 puts on the #PF I/D bit.
//
// A small cache of nested translations (per 4 KiB guest-physical page) stands for the TLB's
// nested part: cleared by flush() and by a new NestedPaging (one per VMRUN). The guest-level TLB
// of paging.ts calls `final` on every hit, so the nested check of each access is never skipped.

import type { Cpu } from '../cpu/cpu.ts';
import { ACC } from '../cpu/cpu.ts';
import { AccessAbort, ModelStop } from '../cpu/fault.ts';
import type { PhysicalMemory } from '../memory.ts';
import type { PhysAccess } from '../paging.ts';
import type { Event } from '../events/classes.ts';
import { PTE } from '../../arch/paging.ts';
import { EFER, NPF_INFO } from '../../arch/svm.ts';
import type { Profile } from '../profile.ts';
import { has1GPages, physAddrWidth } from './checks.ts';

/**
 * A fault of the nested walk: the wiring step turns it into #VMEXIT(VMEXIT_NPF) with these
 * EXITINFO1/EXITINFO2. It is not a Fault (not a guest exception): delivery (events/delivery.ts)
 * rethrows it untouched — after clearing `cpu.delivering`, which is why the event under delivery at
 * the time of the fault is captured here (`during`, for EXITINTINFO).
 */
export class NestedPageFault extends AccessAbort {
  constructor(
    readonly exitInfo1: bigint,
    /** The exact guest-physical address whose translation faulted. */
    readonly exitInfo2: bigint,
    /** `cpu.delivering` when the fault happened: the event whose delivery it interrupted, if any. */
    readonly during: Event | undefined,
  ) {
    super(`#NPF at guest-physical 0x${exitInfo2.toString(16)} (EXITINFO1 0x${exitInfo1.toString(16)})`);
    this.name = 'NestedPageFault';
  }
}

/** What the nested walk needs of the host, fixed at VMRUN (15.25.4). */
export interface NestedPagingContext {
  /** N_CR3 from the VMCB: the nested PML4's system-physical address in bits 51:12. */
  nCr3: bigint;
  /** The host's EFER.NXE: NX exists in nested entries (15.25.7). */
  nxe: boolean;
  /** Physical-address width: bits above it (to 51) are reserved in nested entries (5.3.1). */
  physWidth: number;
  /** 1 GiB pages at the nested PDPT level (CPUID Fn8000_0001 EDX[26]). */
  pages1G: boolean;
}

/**
 * The context for a host with these registers on this profile. The host must be in long mode
 * (EFER.LMA): nested walks in the legacy 32-bit and PAE modes are not modelled (ModelStop).
 */
export function nestedContext(nCr3: bigint, host: { efer: bigint }, profile: Profile): NestedPagingContext {
  if ((host.efer & EFER.LMA) === 0n) throw new ModelStop('nested paging under a host outside long mode (legacy nested walks) is not modelled');
  return {
    nCr3,
    nxe: (host.efer & EFER.NXE) !== 0n,
    physWidth: physAddrWidth(profile),
    pages1G: has1GPages(profile),
  };
}

/** Kinds of nested access (bits; ACC-like): the final access's type, or a guest page-table access. */
const N_WRITE = 1;
const N_FETCH = 2;
const N_WALK = 4;

// cached translation: system-physical page number * 8 + permission bits
const C_RW = 1;
const C_NX = 2;
const C_D = 4;
const CACHE_MAX = 8192;

export class NestedPaging implements PhysAccess {
  private readonly cache = new Map<number, number>();
  private readonly rsvPhys: bigint;
  private readonly pml4: number;

  constructor(readonly mem: PhysicalMemory, readonly ctx: NestedPagingContext) {
    this.rsvPhys = ((1n << 52n) - 1n) & ~((1n << BigInt(ctx.physWidth)) - 1n);
    this.pml4 = Number(ctx.nCr3 & 0x000f_ffff_ffff_f000n);
  }

  /** Drop every cached nested translation (TLB_CONTROL flushes, nested-table edits). */
  flush(): void {
    this.cache.clear();
  }

  // ---- PhysAccess -------------------------------------------------------------------------------

  readPte(cpu: Cpu, gpa: number, size: 4 | 8): bigint {
    const spa = this.translate(cpu, gpa, N_WALK | N_WRITE);
    return size === 8 ? this.mem.read64(spa) : BigInt(this.mem.read32(spa));
  }

  writePte(cpu: Cpu, gpa: number, size: 4 | 8, value: bigint): void {
    const spa = this.translate(cpu, gpa, N_WALK | N_WRITE);
    if (size === 8) this.mem.write64(spa, value);
    else this.mem.write32(spa, Number(value & 0xffff_ffffn));
  }

  final(cpu: Cpu, gpa: number, access: number): number {
    return this.translate(cpu, gpa, (access & ACC.WRITE ? N_WRITE : 0) | (access & ACC.FETCH ? N_FETCH : 0));
  }

  // ---- the nested walk --------------------------------------------------------------------------------

  /** Guest-physical → system-physical for a nested access of `kind`, or throw NestedPageFault. */
  translate(cpu: Cpu | undefined, gpa: number, kind: number): number {
    const gpn = Math.floor(gpa / 4096);
    const offset = gpa % 4096;
    const hit = this.cache.get(gpn);
    if (hit !== undefined && this.permitted(hit, kind)) return Math.floor(hit / 8) * 4096 + offset;
    return this.walk(cpu, gpa, gpn, offset, kind);
  }

  private permitted(e: number, kind: number): boolean {
    if (kind & N_WRITE && (!(e & C_RW) || !(e & C_D))) return false;
    if (kind & N_FETCH && e & C_NX) return false;
    return true;
  }

  private fault(cpu: Cpu | undefined, gpa: number, kind: number, present: boolean, rsv: boolean): NestedPageFault {
    let info = NPF_INFO.US; // every nested access is a user access (15.25.6)
    if (present) info |= NPF_INFO.P;
    if (kind & N_WRITE) info |= NPF_INFO.RW;
    if (rsv) info |= NPF_INFO.RSV;
    if (kind & N_FETCH) info |= NPF_INFO.ID;
    info |= kind & N_WALK ? NPF_INFO.WALK : NPF_INFO.FINAL;
    return new NestedPageFault(info, BigInt(gpa), cpu?.delivering);
  }

  private walk(cpu: Cpu | undefined, gpa: number, gpn: number, offset: number, kind: number): number {
    const g = BigInt(gpa);
    const nx = PTE.NX;
    const rsvCommon = this.rsvPhys | (this.ctx.nxe ? 0n : nx); // NX is reserved without EFER.NXE (5.6.1)
    const addrs: number[] = [];
    const entries: bigint[] = [];
    let table = this.pml4;
    let rw = true;
    let us = true;
    let noExec = false;
    let pageShift = 12;
    let frame = 0;
    for (let level = 4; level >= 1; level--) {
      const index = Number((g >> BigInt(12 + 9 * (level - 1))) & 0x1ffn);
      const addr = table + index * 8;
      const e = this.mem.read64(addr);
      if ((e & PTE.P) === 0n) throw this.fault(cpu, gpa, kind, false, false);
      addrs.push(addr);
      entries.push(e);
      // reserved bits (APM vol. 2 5.3.3): PML4E.PS, large-page address bits, 1 GiB pages without Page1GB
      let rsv = (e & rsvCommon) !== 0n;
      if (level === 4) rsv ||= (e & PTE.PS) !== 0n;
      const large = (level === 2 || level === 3) && (e & PTE.PS) !== 0n;
      if (large && level === 2) rsv ||= (e & 0x1f_e000n) !== 0n; // 2 MiB: bits 20:13
      if (large && level === 3) rsv ||= !this.ctx.pages1G || (e & 0x3fff_e000n) !== 0n; // 1 GiB: bits 29:13
      if (rsv) throw this.fault(cpu, gpa, kind, true, true);
      if ((e & PTE.W) === 0n) rw = false;
      if ((e & PTE.US) === 0n) us = false;
      if ((e & nx) !== 0n) noExec = true;
      if (large || level === 1) {
        pageShift = 12 + 9 * (level - 1);
        frame = Number(e & 0x000f_ffff_ffff_f000n & ~((1n << BigInt(pageShift)) - 1n));
        break;
      }
      table = Number(e & 0x000f_ffff_ffff_f000n);
    }
    // protection (5.6) for a user access: U/S, then R/W (hCR0.WP is moot for user writes), then NX
    if (!us) throw this.fault(cpu, gpa, kind, true, false);
    if (kind & N_WRITE && !rw) throw this.fault(cpu, gpa, kind, true, false);
    if (kind & N_FETCH && noExec && this.ctx.nxe) throw this.fault(cpu, gpa, kind, true, false);

    // A on every level, D on the leaf of a write (5.4.2; 15.25.5 for guest page-table accesses)
    const last = entries.length - 1;
    for (let i = 0; i <= last; i++) {
      let e = entries[i]! | PTE.A;
      if (i === last && kind & N_WRITE) e |= PTE.D;
      if (e !== entries[i]) {
        this.mem.write64(addrs[i]!, e);
        entries[i] = e;
      }
    }
    const dirty = (entries[last]! & PTE.D) !== 0n;
    const spaPage = frame + ((gpn * 4096) % 2 ** pageShift); // this 4 KiB page within a large page
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    // packed with + (not |): page numbers * 8 exceed 32 bits
    this.cache.set(gpn, (spaPage / 4096) * 8 + (rw ? C_RW : 0) + (noExec && this.ctx.nxe ? C_NX : 0) + (dirty ? C_D : 0));
    return spaPage + offset;
  }
}

/** The exact guest-physical address and EXITINFO1 of a nested fault, for reports and tests. */
export function describeNpf(f: NestedPageFault): string {
  const bits: string[] = [];
  for (const [name, m] of Object.entries(NPF_INFO)) if (f.exitInfo1 & m) bits.push(name);
  return `#NPF gpa=0x${f.exitInfo2.toString(16)} [${bits.join(' ')}]`;
}
