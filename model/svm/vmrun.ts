// VMRUN (APM vol. 3 VMRUN pseudocode; vol. 2 15.5 "VMRUN Instruction", 15.20 "Event Injection",
// 15.25.3 nested paging), VMLOAD / VMSAVE (15.5.2), in the order of the pseudocode:
//   1. #UD (EFER.SVME = 0, not protected mode), #GP(0) (CPL ≠ 0, rAX not a supported VMCB address):
//      isa/svm.ts; in a guest, the VMRUN intercept (always set, a VMCB without it fails the checks)
//      is intercepts.ts's
//   2. host state → VM_HSAVE_PA (the RIP after VMRUN), vmcb.ts saveHostState
//   3. consistency checks (checks.ts vmrunCheck) → #VMEXIT(VMEXIT_INVALID), no delivery
//   4. guest state ← VMCB (vmcb.ts loadGuestState, INT_STATE's shadow included), the control area
//      (intercepts, EVENTINJ, next_rip) kept for the guest's lifetime (guest.ts), nested paging
//      (NP_ENABLE with NP in the profile: a NestedPaging PhysAccess on nCR3)
//   5. GIF = 1
//   6. EVENTINJ.V: the event is delivered through the guest's IDT by events/delivery.ts with every
//      check there, unconditionally (not blocked by IF, the shadow or NMI masking) and without being
//      checked against the intercepts itself; what its delivery raises is (intercepts.ts).
// ASID: checked (≠ 0) and otherwise without effect — the model's TLB is flushed on every world switch.
// TLB_CONTROL: likewise (every VMRUN flushes). Not modelled: V_IRQ / V_INTR (virtual interrupts),
// LBR virtualization, the TSC offset, VMCB clean bits (the model always reloads everything, which
// 15.15.3 allows), vGIF.

import type { Cpu } from '../cpu/cpu.ts';
import { SEG } from '../cpu/state.ts';
import { deliverEvent } from '../events/delivery.ts';
import { setPhysAccess } from '../paging.ts';
import { svmSwitches } from '../profile.ts';
import { MSR, VMCB_SAVE } from '../../arch/svm.ts';
import { Vmcb, loadGuestState, saveHostState } from './vmcb.ts';
import { hasNrips, nestedPagingEnabled, unspecifiedVmrun, vmrunCheck } from './checks.ts';
import { noteOpenOutcome } from './open.ts';
import { NestedPaging, nestedContext } from './npt.ts';
import { injectedEvent } from './inject.ts';
import { setGuest, type GuestMode } from './guest.ts';
import { vmexitInvalid } from './vmexit.ts';
import { mutantOn } from '../mutants.ts';
import { GUEST_HOOKS } from './intercepts.ts';

/** Why the last VMRUN of a CPU failed its checks (diagnostics and tests; the exit carries no reason). */
const lastFailure = new WeakMap<Cpu, string>();
export function lastVmrunFailure(cpu: Cpu): string | undefined {
  return lastFailure.get(cpu);
}

/**
 * Injections the manual leaves open whose outcome the model produced its own way (the pushed RIP
 * of a trap-like event without NRIPS): per CPU, the last VMRUN's; for tests and diagnostics.
 */
const lastUnspecified = new WeakMap<Cpu, boolean>();
export function lastInjectionUnspecified(cpu: Cpu): boolean {
  return lastUnspecified.get(cpu) ?? false;
}

/** VMRUN with the VMCB at physical address `pa`, after the instruction's own exceptions. */
export function vmrun(cpu: Cpu, pa: number): void {
  const profile = cpu.profile;
  const vmcb = new Vmcb(cpu.mem, pa);
  const hsave = new Vmcb(cpu.mem, Number((cpu.msr.get(MSR.VM_HSAVE_PA) ?? 0n) & ~0xfffn));
  saveHostState(cpu, hsave);
  const host = { cr0: cpu.cr0, cr4: cpu.cr4, efer: cpu.efer };

  // a VMRUN the manual leaves open (checks.ts unspecifiedVmrun): the model goes on its own way,
  // and the case's outcome is marked open (open.ts), whichever way that is
  const open = unspecifiedVmrun(vmcb, profile);
  if (open !== undefined) noteOpenOutcome(cpu, open);
  const failure = vmrunCheck(vmcb, profile, host, { acceptNmiVectorException: mutantOn(cpu, 'accept-nmi-vector-exception') });
  if (failure !== undefined) {
    lastFailure.set(cpu, failure);
    vmexitInvalid(cpu, vmcb, hsave);
    return;
  }
  lastFailure.delete(cpu);

  const ctl = vmcb.control();
  const switches = svmSwitches(profile);
  loadGuestState(cpu, vmcb);
  // FS, GS, TR, LDTR are VMLOAD's (15.5.2): VMRUN leaves them as they are
  let nested: NestedPaging | undefined;
  if (nestedPagingEnabled(vmcb, profile)) {
    nested = new NestedPaging(cpu.mem, nestedContext(ctl.nCr3, host, profile));
    setPhysAccess(cpu, nested);
  }
  const g: GuestMode = {
    vmcb, hsave, ctl, nrips: hasNrips(profile), decodeAssists: switches.decodeAssists, injecting: undefined, nested,
  };
  setGuest(cpu, g);
  cpu.eventHooks = GUEST_HOOKS;
  cpu.gif = true;

  const inj = injectedEvent(ctl.eventInj, { rip: cpu.rip, nextRip: ctl.nextRip, nrips: g.nrips, mutant: (n) => mutantOn(cpu, n) });
  lastUnspecified.set(cpu, inj?.returnRipUnspecified ?? false);
  if (inj) {
    g.injecting = inj.event;
    try {
      deliverEvent(cpu, inj.event);
    } finally {
      g.injecting = undefined;
    }
  }
}

// ---- VMLOAD / VMSAVE (15.5.2) ------------------------------------------------------------------------------

/** Save-area offsets of the MSRs VMLOAD/VMSAVE move besides FS, GS, TR, LDTR (APM appendix B, Table B-2). */
const VMLOAD_MSRS: readonly [number, number][] = [
  [VMCB_SAVE.STAR, MSR.STAR],
  [VMCB_SAVE.LSTAR, MSR.LSTAR],
  [VMCB_SAVE.CSTAR, MSR.CSTAR],
  [VMCB_SAVE.SFMASK, MSR.SFMASK],
  [VMCB_SAVE.KERNEL_GS_BASE, MSR.KERNEL_GS_BASE],
  [VMCB_SAVE.SYSENTER_CS, MSR.SYSENTER_CS],
  [VMCB_SAVE.SYSENTER_ESP, MSR.SYSENTER_ESP],
  [VMCB_SAVE.SYSENTER_EIP, MSR.SYSENTER_EIP],
];
const { FS, GS, LDTR, TR } = VMCB_SAVE;

/**
 * VMLOAD: FS, GS, TR, LDTR with their hidden state, KernelGsBase, STAR/LSTAR/CSTAR/SFMASK and the
 * SYSENTER MSRs from the VMCB at `pa` (15.5.2). `pa` is used as a system-physical address (a guest
 * VMLOAD without the intercept under nested paging would translate it: not modelled).
 */
export function vmload(cpu: Cpu, pa: number): void {
  const v = new Vmcb(cpu.mem, pa);
  cpu.seg[SEG.FS] = v.segment(FS);
  cpu.seg[SEG.GS] = v.segment(GS);
  cpu.ldtr = v.segment(LDTR);
  cpu.tr = v.segment(TR);
  for (const [off, msr] of VMLOAD_MSRS) cpu.msr.set(msr, v.u64(off));
}

/** VMSAVE: the same state into the VMCB at `pa` (15.5.2). */
export function vmsave(cpu: Cpu, pa: number): void {
  const v = new Vmcb(cpu.mem, pa);
  v.setSegment(FS, cpu.seg[SEG.FS]!);
  v.setSegment(GS, cpu.seg[SEG.GS]!);
  v.setSegment(LDTR, cpu.ldtr);
  v.setSegment(TR, cpu.tr);
  for (const [off, msr] of VMLOAD_MSRS) v.set64(off, cpu.msr.get(msr) ?? 0n);
}
