// Guest mode (APM vol. 2 15.5–15.6): what the processor remembers between VMRUN and #VMEXIT — the
// VMCB and host save area, the intercepts loaded from the control area, the profile switches that
// decide what #VMEXIT writes, nested paging, and the event being injected.
//
// The CPU knows nothing of this (docs/model.md "The guest-mode hook"): guest mode lives in a WeakMap keyed by
// the Cpu and reaches the CPU only through the hooks VMRUN installs (cpu.eventHooks:
// beforeExecute for the instruction intercepts, beforeDeliver / onException / onShutdown for the
// event intercepts, onAbort for a nested page fault) and paging's setPhysAccess. #VMEXIT removes
// all of them, so a host (or a CPU that never ran VMRUN) runs without any SVM code in its path.

import type { Cpu } from '../cpu/cpu.ts';
import { EFER_SVME } from '../cpu/cpu.ts';
import { Fault, gp, ud } from '../cpu/fault.ts';
import type { Event } from '../events/classes.ts';
import type { Vmcb, VmcbControl } from './vmcb.ts';
import type { NestedPaging } from './npt.ts';
import { physAddrWidth } from './checks.ts';

export interface GuestMode {
  /** The VMCB of the running guest (rAX of VMRUN) and the host save area (VM_HSAVE_PA). */
  vmcb: Vmcb;
  hsave: Vmcb;
  /** The control area as VMRUN loaded it: intercepts are not re-read while the guest runs (15.15). */
  ctl: VmcbControl;
  /** Profile switches (CPUID Fn8000_000A EDX): next_rip written on #VMEXIT, decode assists. */
  nrips: boolean;
  decodeAssists: boolean;
  /** The event VMRUN is injecting (15.20): not itself checked against the intercepts. */
  injecting: Event | undefined;
  /** Nested paging for this guest (15.25), if NP_ENABLE. */
  nested: NestedPaging | undefined;
}

const guests = new WeakMap<Cpu, GuestMode>();

/** The guest this CPU is running, or undefined in host mode. */
export function guestOf(cpu: Cpu): GuestMode | undefined {
  return guests.get(cpu);
}

export function setGuest(cpu: Cpu, g: GuestMode | undefined): void {
  if (g) guests.set(cpu, g);
  else guests.delete(cpu);
}

/**
 * The "simple" exceptions of the SVM instructions VMRUN, VMLOAD, VMSAVE, CLGI, STGI, INVLPGA (APM
 * vol. 3, each instruction's exception table and pseudocode): #UD when EFER.SVME = 0 or outside
 * protected mode, #GP(0) at CPL > 0. Checked before their intercepts (15.9: "instruction intercepts
 * are checked after simple exceptions (such as #GP when CPL is incorrect, or #UD)").
 */
export function svmInstructionFault(cpu: Cpu): Fault | undefined {
  if ((cpu.efer & EFER_SVME) === 0n || !cpu.protectedMode) return ud();
  if (cpu.cpl !== 0) return gp(0);
  return undefined;
}

/**
 * The physical address in rAX of VMRUN, VMLOAD, VMSAVE (APM vol. 3 VMRUN: "rAX contains an
 * unsupported physical address" → #GP(0)): rAX at the instruction's address size (iced's form
 * suffix: q 64, d 32, w 16), 4 KiB aligned and below the physical-address width. The alignment
 * check is the model's reading of "unsupported" (the VMCB is a 4 KiB page, 15.5).
 */
export function vmcbAddress(cpu: Cpu, code: string): number | Fault {
  const size = code.endsWith('q') ? 64n : code.endsWith('d') ? 32n : code.endsWith('w') ? 16n : 64n;
  const pa = BigInt.asUintN(Number(size), cpu.gpr[0]!);
  if (pa & 0xfffn || pa >> BigInt(physAddrWidth(cpu.profile)) !== 0n || pa + 0x1000n > BigInt(cpu.mem.size)) return gp(0);
  return Number(pa);
}
