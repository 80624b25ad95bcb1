// VMRUN's consistency checks (APM vol. 2 15.5.1 "Canonicalization and Consistency Checks", 15.20
// "Event Injection", 15.25.3–15.25.4 nested paging, 15.10.1 / 15.11 permission maps): a pure
// function of the VMCB contents (read from physical memory), the CPU profile and, for the nested-
// paging checks, the host's paging registers. Any failure is #VMEXIT(VMEXIT_INVALID); the returned
// string names the rule and its section, for diagnostics only (the exit carries no reason).
//
// The manual gives no order among the checks (only that any failure gives VMEXIT_INVALID), so the
// order below is the manual's list order and has no architectural meaning.
//
// Decisions where the manual is silent (each also at its place below):
//  - CR3 MBZ bits are checked for a long-mode guest (EFER.LME = CR0.PG = 1): bits 63:52 and those
//    above the physical-address width (APM vol. 2 3.1.2, as MOV CR3 checks them in isa/control-regs.ts).
//    Outside long mode the VMCB's CR3 bits 63:32 have no MBZ rule in the manual: not checked.
//  - EVENTINJ bits 30:12 ("Reserved, SBZ", Figure 15-5): whether VMRUN checks them is unspecified;
//    not checked.
//  - #OF (TYPE 3, vector 4) into a 64-bit guest: INTO is invalid in 64-bit mode like BOUND, but
//    15.20 names only #BR; whether VMRUN rejects it is unspecified. The model accepts it and
//    delivers it; `unspecifiedVmrun` reports it, and the case's outcome is open (open.ts: masked
//    entirely, `open` in the matrix; docs/svm-rules.md "Open outcomes").
//  - TYPE 3 with vector 21 (#CP) or 29 (#VC) on a part without shadow stacks or SEV-ES: chapter 8
//    lists both as exceptions, but they exist only with their feature; whether VMRUN refuses them
//    without it is unspecified. The model refuses them (no profile has CET or SEV-ES) and
//    `unspecifiedVmrun` reports them.
//  - EV = 1 into a real-mode guest (real-mode delivery pushes no error code): unspecified; the
//    model accepts it (delivery pushes nothing) and `unspecifiedVmrun` reports it.
//  - The permission-map bounds (15.10.1, 15.11) are checked whether or not the IOIO/MSR intercept
//    is enabled: the manual does not make them conditional.
//  - The ASID is not checked against the CPUID maximum (Fn8000_000A EBX): 15.5.1 lists only ASID 0.
//  - NP_ENABLE on a profile without nested paging (CPUID Fn8000_000A EDX[NP] = 0) is ignored (the
//    bit is then reserved control state, not a listed check).
//  - CET (S_CET, U_CET, CR4.CET) is not in any profile: CR4.CET is simply a CR4 MBZ bit.
//  - nCR3 MBZ bits (15.25.4): those of a long-mode CR3 when the host is in long mode (svmconf's
//    hosts always are, and npt.ts walks only 4-level nested tables); bits 63:32 otherwise.

import { CR0, CR4, VEC } from '../../arch/x86.ts';
import {
  EFER, EVENT_TYPE, INTERCEPT_MISC2, VMCB, VMCB_SAVE, parseEventInfo,
} from '../../arch/svm.ts';
import { CPUID_ADDRESS_SIZES, CPUID_EXT_EDX as EXT_EDX, CPUID_LEAF } from '../../arch/cpuid.ts';
import { ATTR } from '../cpu/state.ts';
import { hardwareCpuid, hardwareFeatures, type CpuidLeaf, type Profile } from '../profile.ts';
import type { Vmcb } from './vmcb.ts';

/** The host's paging registers at VMRUN (for the nested-paging checks, 15.25.3–15.25.4). */
export interface HostPaging {
  cr0: bigint;
  cr4: bigint;
  efer: bigint;
}

// ---- profile facts ---------------------------------------------------------------------------------------

/** The part's CPUID as the profile (possibly with features hidden for this boot) reports it. */
const partCpuid = (p: Profile, leaf: number): CpuidLeaf => hardwareCpuid(p, leaf, 0);


/** Physical-address width (CPUID Fn8000_0008 EAX[7:0]), 36 when the leaf is absent (as paging.ts). */
export function physAddrWidth(p: Profile): number {
  return partCpuid(p, CPUID_LEAF.ADDRESS_SIZES).eax & CPUID_ADDRESS_SIZES.PHYS_WIDTH_MASK || CPUID_ADDRESS_SIZES.DEFAULT_PHYS_WIDTH;
}

function hasLongMode(p: Profile): boolean {
  return (partCpuid(p, CPUID_LEAF.EXT_FEATURES).edx & (1 << EXT_EDX.LM)) !== 0;
}

/** 1 GiB pages (CPUID Fn8000_0001 EDX[26] Page1GB). */
export function has1GPages(p: Profile): boolean {
  return (partCpuid(p, CPUID_LEAF.EXT_FEATURES).edx & (1 << EXT_EDX.PAGE1GB)) !== 0;
}

/** The part's SVM features (CPUID Fn8000_000A EDX; APM vol. 2 15.4): nested paging, NRIPS. */
export function svmFeatures(p: Profile): { npt: boolean; nrips: boolean } {
  const f = hardwareFeatures(p);
  return { npt: f.npt, nrips: f.nrips };
}

/**
 * EFER bits that exist on the profile (APM vol. 2 3.1.7): SCE with SYSCALL, LME and LMA with long
 * mode, NXE with NX, and SVME (VMRUN runs only on a part with SVM). Every other bit is MBZ for VMRUN
 * (15.5.1 "Any MBZ bit of EFER").
 */
export function eferDefined(p: Profile): bigint {
  const edx = partCpuid(p, CPUID_LEAF.EXT_FEATURES).edx;
  let m = EFER.SVME;
  if (edx & (1 << EXT_EDX.SYSCALL)) m |= EFER.SCE;
  if (edx & (1 << EXT_EDX.LM)) m |= EFER.LME | EFER.LMA;
  if (edx & (1 << EXT_EDX.NX)) m |= EFER.NXE;
  return m;
}

/**
 * CR4 bits that exist on the profile: VME … OSXMMEXCPT (APM vol. 2 3.1.3). The profiles report no
 * CPUID leaf 7 and no XSAVE, so every other bit is MBZ (the same set MOV CR4 accepts, isa/control-regs.ts).
 */
export const CR4_DEFINED = CR4.VME | CR4.PVI | CR4.TSD | CR4.DE | CR4.PSE | CR4.PAE | CR4.MCE | CR4.PGE | CR4.PCE | CR4.OSFXSR | CR4.OSXMMEXCPT;

/** CR3 MBZ bits in long mode: 63:52 and those above the physical-address width (APM vol. 2 3.1.2). */
export function cr3LongModeMbz(p: Profile): bigint {
  return ((1n << 64n) - 1n) & ~((1n << BigInt(physAddrWidth(p))) - 1n);
}

/**
 * Vectors TYPE 3 may inject: those chapter 8 (Table 8-1) defines as exceptions — #DE #DB #BP #OF
 * #BR #UD #NM #DF #TS #NP #SS #GP #PF #MF #AC #MC #XF #HV #SX — as docs/svm-rules.md "Illegal event injection" lists them (the
 * set KVM accepts). #CP (21) needs shadow stacks and #VC (29) SEV-ES, which no profile has; vector 2
 * is NMI, not an exception (15.20); 9, 15, 20 (#VE is Intel's), 22–27, 31 are reserved and ≥ 32
 * are interrupts.
 */
export const INJECTABLE_EXCEPTIONS: ReadonlySet<number> = new Set([
  VEC.DE, VEC.DB, VEC.BP, VEC.OF, VEC.BR, VEC.UD, VEC.NM, VEC.DF, VEC.TS, VEC.NP, VEC.SS, VEC.GP,
  VEC.PF, VEC.MF, VEC.AC, VEC.MC, VEC.XM, VEC.HV, VEC.SX,
]);

// ---- the guest's mode as the VMCB describes it -------------------------------------------------------------

const bit = (v: bigint, m: bigint): boolean => (v & m) !== 0n;

/** Long mode active per the loaded registers: EFER.LME and CR0.PG (14.6.1; 15.5.1 phrases its checks so). */
function longModeOf(efer: bigint, cr0: bigint): boolean {
  return bit(efer, EFER.LME) && bit(cr0, CR0.PG);
}

/** 64-bit mode: long mode and CS.L (APM vol. 2 1.2.2). */
export function guest64(vmcb: Vmcb): boolean {
  const efer = vmcb.u64(VMCB_SAVE.EFER);
  const cr0 = vmcb.u64(VMCB_SAVE.CR0);
  return longModeOf(efer, cr0) && (vmcb.segment(VMCB_SAVE.CS).attrib & ATTR.L) !== 0;
}

// ---- the checks ------------------------------------------------------------------------------------------------

/**
 * VMRUN's consistency checks on the VMCB at `vmcb`: undefined when the state is legal, otherwise
 * the first failing rule (→ #VMEXIT(VMEXIT_INVALID)). `host` is needed only for the nested-paging
 * checks; without it they are skipped.
 */
export function vmrunCheck(vmcb: Vmcb, profile: Profile, host?: HostPaging, opts: InjectionCheckOptions = {}): string | undefined {
  const efer = vmcb.u64(VMCB_SAVE.EFER);
  const cr0 = vmcb.u64(VMCB_SAVE.CR0);
  const cr3 = vmcb.u64(VMCB_SAVE.CR3);
  const cr4 = vmcb.u64(VMCB_SAVE.CR4);
  const features = svmFeatures(profile);
  const width = BigInt(physAddrWidth(profile));

  // 15.5.1 "Canonicalization and Consistency Checks", in the manual's order
  if (!bit(efer, EFER.SVME)) return 'EFER.SVME is zero (15.5.1)';
  if (!bit(cr0, CR0.CD) && bit(cr0, CR0.NW)) return 'CR0.CD is zero and CR0.NW is set (15.5.1)';
  if (cr0 >> 32n) return 'CR0[63:32] are not zero (15.5.1)';
  if (longModeOf(efer, cr0) && cr3 & cr3LongModeMbz(profile)) return 'an MBZ bit of CR3 is set (15.5.1; 3.1.2 long-mode CR3)';
  if (cr4 & ~CR4_DEFINED) return 'an MBZ bit of CR4 is set (15.5.1; 3.1.3)';
  if (vmcb.u64(VMCB_SAVE.DR6) >> 32n) return 'DR6[63:32] are not zero (15.5.1)';
  if (vmcb.u64(VMCB_SAVE.DR7) >> 32n) return 'DR7[63:32] are not zero (15.5.1)';
  if (efer & ~eferDefined(profile)) return 'an MBZ bit of EFER is set (15.5.1; 3.1.7)';
  if (!hasLongMode(profile) && efer & (EFER.LMA | EFER.LME)) return 'EFER.LMA or EFER.LME set without long-mode support (15.5.1)';
  if (bit(efer, EFER.LME) && bit(cr0, CR0.PG) && !bit(cr4, CR4.PAE)) return 'EFER.LME and CR0.PG set with CR4.PAE zero (15.5.1)';
  if (bit(efer, EFER.LME) && bit(cr0, CR0.PG) && !bit(cr0, CR0.PE)) return 'EFER.LME and CR0.PG set with CR0.PE zero (15.5.1)';
  if (bit(efer, EFER.LME) && bit(cr0, CR0.PG) && bit(cr4, CR4.PAE)) {
    const cs = vmcb.segment(VMCB_SAVE.CS).attrib;
    if (cs & ATTR.L && cs & ATTR.DB) return 'EFER.LME, CR0.PG, CR4.PAE, CS.L and CS.D all set (15.5.1)';
  }
  if (!(vmcb.u32(VMCB.INTERCEPT_MISC2) & (1 << INTERCEPT_MISC2.VMRUN))) return 'the VMRUN intercept bit is clear (15.5.1; Table 15-7)';
  // the maps: the last byte must lie below 2^width (15.10.1: IOPM 12 KiB; 15.11: MSRPM two pages); low 12 bits ignored
  const top = 1n << width;
  const iopm = vmcb.u64(VMCB.IOPM_BASE) & ~0xfffn;
  if (iopm + IOPM_BYTES - 1n >= top) return 'the IOPM extends beyond the maximum physical address (15.5.1, 15.10.1)';
  const msrpm = vmcb.u64(VMCB.MSRPM_BASE) & ~0xfffn;
  if (msrpm + MSRPM_BYTES - 1n >= top) return 'the MSRPM extends beyond the maximum physical address (15.5.1, 15.11)';
  const inj = eventInjectionCheck(vmcb, opts);
  if (inj) return inj;
  if (vmcb.u32(VMCB.ASID) === 0) return 'ASID is zero (15.5.1, 15.25.1)';

  // 15.25.3–15.25.4: nested paging
  if (features.npt && vmcb.npEnabled && host) {
    if (!bit(host.cr0, CR0.PG)) return 'NP_ENABLE with host CR0.PG zero (15.25.3)';
    const ncr3 = vmcb.u64(VMCB.NCR3);
    const hostLong = bit(host.efer, EFER.LMA);
    const mbz = hostLong ? cr3LongModeMbz(profile) : ~0xffff_ffffn & ((1n << 64n) - 1n);
    if (ncr3 & mbz) return 'an MBZ bit of nCR3 is set (15.25.4)';
    const pat = vmcb.u64(VMCB_SAVE.G_PAT);
    for (let i = 0n; i < 8n; i++) {
      const pa = (pat >> (8n * i)) & 0xffn;
      if (!PAT_TYPES.has(pa)) return `G_PAT.PA${i} is not a supported memory type (15.25.4; 7.8.1)`;
    }
  }

  // 15.5.1: a legacy-PAE guest without nested paging has its four PDPEs read by VMRUN
  if (!(features.npt && vmcb.npEnabled) && bit(cr0, CR0.PG) && bit(cr4, CR4.PAE) && !bit(efer, EFER.LME)) {
    const base = Number(cr3 & 0xffff_ffe0n);
    const rsv = PDPE_RESERVED | (((1n << 52n) - 1n) & ~((1n << width) - 1n));
    for (let i = 0; i < 4; i++) {
      const e = vmcb.mem.read64(base + 8 * i);
      if (e & 1n && e & rsv) return `PDPE${i} has reserved bits set (15.5.1, legacy PAE)`;
    }
  }
  return undefined;
}

/** IOPM: 12 Kbytes (15.10.1). MSRPM: two 4 KiB pages (15.11). */
const IOPM_BYTES = 0x3000n;
const MSRPM_BYTES = 0x2000n;

/** PAT memory types (APM vol. 2 7.8.1): UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7; 2, 3 and 8–255 reserved. */
const PAT_TYPES: ReadonlySet<bigint> = new Set([0n, 1n, 4n, 5n, 6n, 7n]);

/** Reserved bits of a legacy PAE PDPE (APM vol. 2 5.3.2 Figure 5-10): 2:1, 8:5, 63. */
const PDPE_RESERVED = (1n << 63n) | 0x1e6n;

/**
 * The event-injection part of the checks (15.20, 15.5.1 "Illegal event injection"): with
 * EVENTINJ.V = 1 —
 *  - TYPE 1, 5, 6, 7 are reserved (15.20 "Reserved values of TYPE");
 *  - TYPE 3 with a vector that is not an exception, vector 2 included (15.20);
 *  - an event impossible in the guest's mode: #BR into a 64-bit guest (15.20's example; BOUND is
 *    invalid in 64-bit mode, APM vol. 3 BOUND).
 * EVENTINJ with V = 0 is ignored entirely.
 */
export interface InjectionCheckOptions {
  /** Mutant accept-nmi-vector-exception (model/mutants.ts): TYPE 3 vector 2 passes. */
  acceptNmiVectorException?: boolean;
}

export function eventInjectionCheck(vmcb: Vmcb, opts: InjectionCheckOptions = {}): string | undefined {
  const e = parseEventInfo(vmcb.eventInj());
  if (!e.valid) return undefined;
  if (e.type !== EVENT_TYPE.INTR && e.type !== EVENT_TYPE.NMI && e.type !== EVENT_TYPE.EXCEPTION && e.type !== EVENT_TYPE.SOFT_INT) {
    return `EVENTINJ.TYPE ${e.type} is reserved (15.20)`;
  }
  if (e.type === EVENT_TYPE.EXCEPTION) {
    const accepted = INJECTABLE_EXCEPTIONS.has(e.vector) || (opts.acceptNmiVectorException === true && e.vector === VEC.NMI);
    if (!accepted) return `EVENTINJ TYPE 3 with vector ${e.vector}, not an exception (15.20)`;
    if (e.vector === VEC.BR && guest64(vmcb)) return 'EVENTINJ #BR into a 64-bit guest (15.20)';
  }
  return undefined;
}

/**
 * VMRUNs whose outcome the manual leaves open (docs/svm-rules.md "Open outcomes"): the model runs
 * them its way (accepting or refusing, as the checks above say) and the case's outcome is open
 * (open.ts). Undefined when nothing is open.
 *  - #OF (TYPE 3 vector 4) into a 64-bit guest: 15.20 names only #BR as impossible there;
 *  - TYPE 3 vector 21 (#CP) or 29 (#VC) on a part without the feature that raises it (Table 8-1
 *    lists both; 15.20 does not say whether they count as exceptions without it);
 *  - an error code (EV = 1) injected into a real-mode guest, where delivery pushes none (8.6).
 */
export function unspecifiedVmrun(vmcb: Vmcb, profile: Profile): string | undefined {
  const e = parseEventInfo(vmcb.eventInj());
  if (!e.valid) return undefined;
  if (e.type === EVENT_TYPE.EXCEPTION && e.vector === VEC.OF && guest64(vmcb)) return 'EVENTINJ #OF into a 64-bit guest: unspecified (APM vol. 2 15.20 names only #BR)';
  if (e.type === EVENT_TYPE.EXCEPTION && (e.vector === VEC.CP || e.vector === VEC.VC) && !INJECTABLE_EXCEPTIONS.has(e.vector)) {
    return `EVENTINJ TYPE 3 vector ${e.vector} on a part without the feature that raises it (profile ${profile.name}): unspecified (APM vol. 2 15.20, Table 8-1)`;
  }
  if (e.ev && !bit(vmcb.u64(VMCB_SAVE.CR0), CR0.PE)) return 'EVENTINJ with EV = 1 into a real-mode guest: unspecified (APM vol. 2 8.6, 15.20)';
  return undefined;
}

/** Whether nested paging is on for this VMRUN: NP_ENABLE with NP in the profile (15.25.3). */
export function nestedPagingEnabled(vmcb: Vmcb, profile: Profile): boolean {
  return svmFeatures(profile).npt && vmcb.npEnabled;
}

/** NRIPS in the profile (CPUID Fn8000_000A EDX[NRIPS], 15.7.1). */
export function hasNrips(profile: Profile): boolean {
  return svmFeatures(profile).nrips;
}
