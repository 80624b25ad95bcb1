// #VMEXIT (APM vol. 2 15.6 "#VMEXIT", 15.7 "Intercept Operation", vol. 3 VMRUN pseudocode): the
// guest state goes back to the VMCB, the exit fields are written, the host state comes back from
// VM_HSAVE_PA, GIF is cleared and guest mode ends (hooks and nested paging removed).
//
// What every exit writes (docs/svm-rules.md "What every #VMEXIT writes"):
//  - EXITCODE, 64 bits;
//  - EXITINFO1 / EXITINFO2 as the caller gives them (per exit kind, intercepts.ts), 0 where the
//    manual gives them no meaning — those bits are masked (masks.ts), the 0 is the model's choice;
//  - EXITINTINFO: the event whose delivery was interrupted (V = 1, 15.7.2), else 0 (V = 0; the other
//    bits are then unspecified, the model writes 0);
//  - next_rip (0x0C8) only with NRIPS (15.7.1): the next sequential RIP for the exits of Table 15-7,
//    MSR, IOIO and #BP/#OF/#BR raised by INT3/INTO/BOUND, 0 for every other exit, including exits
//    while vectoring. Without NRIPS the processor does not write the field: the model leaves it as
//    the VMM wrote it (*unspecified*, masked);
//  - EVENTINJ: the whole field is cleared (vol. 3 VMRUN: "the EVENTINJ field is cleared on
//    #VMEXIT"), whether the event was delivered or not;
//  - the guest state (saveGuestState), INT_STATE's shadow included.

import type { Cpu } from '../cpu/cpu.ts';
import { setPhysAccess, IDENTITY_PHYS } from '../paging.ts';
import { VMCB, EXIT } from '../../arch/svm.ts';
import { loadHostState, saveGuestState, type Vmcb } from './vmcb.ts';
import { guestOf, setGuest, type GuestMode } from './guest.ts';
import { mutantOn } from '../mutants.ts';

export interface ExitInfo {
  code: bigint;
  info1?: bigint;
  info2?: bigint;
  /** EXITINTINFO (with its error code in bits 63:32); 0 when no event was being delivered. */
  intInfo?: bigint;
  /** next_rip with NRIPS; 0 (the default) for exits outside Table 15-7 / MSR / IOIO / INT3-INTO-BOUND. */
  nextRip?: bigint;
}

/** Leave guest mode: no hooks, no nested paging, no guest. */
function leaveGuest(cpu: Cpu): void {
  cpu.eventHooks = undefined;
  cpu.delivering = undefined;
  setPhysAccess(cpu, IDENTITY_PHYS);
  setGuest(cpu, undefined);
}

/** The host side of every #VMEXIT (15.6): host state reloaded, GIF = 0, no interrupt shadow, not halted. */
function resumeHost(cpu: Cpu, hsave: Vmcb): void {
  loadHostState(cpu, hsave);
  cpu.interruptShadow = false;
  cpu.halted = false;
  cpu.gif = false;
}

/** #VMEXIT from a running guest. */
export function vmexit(cpu: Cpu, g: GuestMode, e: ExitInfo): void {
  const vmcb = g.vmcb;
  saveGuestState(cpu, vmcb);
  vmcb.set64(VMCB.EXIT_CODE, e.code);
  vmcb.set64(VMCB.EXIT_INFO_1, e.info1 ?? 0n);
  vmcb.set64(VMCB.EXIT_INFO_2, e.info2 ?? 0n);
  const intInfo = e.intInfo ?? 0n;
  // mutant stale-exitintinfo: nothing under delivery, EXITINTINFO left as the last exit wrote it
  if (intInfo !== 0n || !mutantOn(cpu, 'stale-exitintinfo')) vmcb.set64(VMCB.EXIT_INT_INFO, intInfo);
  // mutant next-rip-kept-on-vectoring-exit: an exit while vectoring leaves next_rip as it was
  const keepNextRip = intInfo !== 0n && mutantOn(cpu, 'next-rip-kept-on-vectoring-exit');
  if (g.nrips && !keepNextRip) vmcb.set64(VMCB.NEXT_RIP, e.nextRip ?? 0n);
  vmcb.set64(VMCB.EVENT_INJ, 0n);
  leaveGuest(cpu);
  resumeHost(cpu, g.hsave);
}

/** #VMEXIT of the running guest, if there is one (for callers that only know the CPU). */
export function vmexitCurrent(cpu: Cpu, e: ExitInfo): boolean {
  const g = guestOf(cpu);
  if (!g) return false;
  vmexit(cpu, g, e);
  return true;
}

/**
 * #VMEXIT(VMEXIT_INVALID): VMRUN failed its consistency checks (15.5.1) before the guest ran. The
 * exit code is all 64 bits set; EVENTINJ is cleared (every #VMEXIT clears it); no delivery was
 * attempted. *Unspecified* and left as the VMM wrote them: EXITINFO1/2, EXITINTINFO, next_rip and
 * the save area (the model does not write back a guest state that never ran). The host state is
 * reloaded from VM_HSAVE_PA like any #VMEXIT (DR7 enables cleared, TLB flushed) and GIF = 0.
 */
export function vmexitInvalid(cpu: Cpu, vmcb: Vmcb, hsave: Vmcb): void {
  // mutant exit-code-low32: only the low half of the 64-bit code written
  vmcb.set64(VMCB.EXIT_CODE, mutantOn(cpu, 'exit-code-low32') ? EXIT.INVALID & 0xffff_ffffn : EXIT.INVALID);
  vmcb.set64(VMCB.EVENT_INJ, 0n);
  resumeHost(cpu, hsave);
}
