// Mutants: named switches that put a historical hypervisor bug back into the model, one at a time,
// so the suite can show that some case notices it (`svmconf mutants`, suite/mutants.ts). A mutant
// lives either in the virtual L0 (model/l0/: how a hypervisor below the model re-injects an event
// whose delivery it interrupted) or in the SVM model itself (model/svm/: what the processor does
// for L1). Each entry names the bug it reproduces, where it was found and fixed, and where it bites
// in the model. The switches are read through mutantOn(cpu, name): a CPU without mutants (every
// normal run) pays one WeakMap lookup at VMRUN, #VMEXIT and L0 re-injection, nothing per instruction.
//
// Sources (read for the facts; nothing copied):
//  [kvm-2022] Maciej S. Szmigiero, Sean Christopherson, "KVM: SVM: fix soft interrupt/exception
//      re-injection", v3, kvm@vger.kernel.org, 2022-05-02: patches "KVM: SVM: Re-inject INT3/INTO
//      instead of retrying the instruction" (05/12), "KVM: SVM: Re-inject INTn instead of retrying
//      the insn on "failure"" (06/12: before it svm_complete_interrupts dropped TYPE_SOFT — the INT n
//      was retried — and svm_inject_irq injected every interrupt as TYPE_INTR), "KVM: nSVM: Sync
//      next_rip field from vmcb12 to vmcb02" and "KVM: nSVM: Transparently handle L1 -> L2 soft
//      interrupt re-injection" (soft_int_old_rip / soft_int_next_rip / soft_int_csbase).
//  [kvm-csbase] the same soft_int_csbase was first taken from the wrong VMCB (L1's CS base, not
//      vmcb12's); later patches pass vmcb12_csbase (Yosry Ahmed, "KVM: nSVM: Move updating NextRIP
//      and soft IRQ RIPs into a helper", kvm@vger.kernel.org, 2026-02-12, shows the corrected code).
//  [apm] AMD64 APM vol. 2 15.7.1 (next_rip), 15.7.2 (EXITINTINFO), 15.20 (EVENTINJ), appendix C.

import type { Cpu } from './cpu/cpu.ts';

export interface Mutant {
  name: string;
  /** 'l0': the virtual L0's re-injection (model/l0/); 'svm': the SVM model (model/svm/). */
  layer: 'l0' | 'svm';
  /** The historical bug, in one sentence. */
  bug: string;
  /** Where it was found or fixed (see the sources above). */
  source: string;
  /** The code the switch changes. */
  bites: string;
}

export const MUTANTS = [
  {
    name: 'retry-soft-exception',
    layer: 'l0',
    bug: 'INT3/INTO whose delivery the hypervisor interrupted is re-executed instead of re-injected: a code breakpoint on it hits twice, an L1-injected #BP/#OF is lost',
    source: '[kvm-2022] "KVM: SVM: Re-inject INT3/INTO instead of retrying the instruction"',
    bites: 'model/l0/reinject.ts: EXITINTINFO TYPE 3 vector 3/4',
  },
  {
    name: 'retry-soft-int',
    layer: 'l0',
    bug: 'INT n whose delivery the hypervisor interrupted is re-executed instead of re-injected (an L1-injected INT n is lost)',
    source: '[kvm-2022] "KVM: SVM: Re-inject INTn instead of retrying the insn on "failure""',
    bites: 'model/l0/reinject.ts: EXITINTINFO TYPE 4',
  },
  {
    name: 'reinject-drops-next-rip',
    layer: 'l0',
    bug: 'an L1-injected soft event is re-injected with next_rip = RIP, not the next_rip L1 gave: the handler returns to the INT',
    source: '[kvm-2022] "KVM: nSVM: Sync next_rip field from vmcb12 to vmcb02"',
    bites: 'model/l0/l0.ts: the soft-event state taken from vmcb12 at VMRUN',
  },
  {
    name: 'soft-int-as-intr',
    layer: 'l0',
    bug: 'a re-injected INT n goes in as TYPE 0 (INTR): no gate-DPL check, EXT set in error codes, RIP pushed instead of next_rip',
    source: '[kvm-2022] "KVM: SVM: Re-inject INTn instead of retrying the insn on "failure"" (svm_inject_irq used SVM_EVTINJ_TYPE_INTR)',
    bites: 'model/l0/reinject.ts: EVENTINJ TYPE of a re-injected INT n',
  },
  {
    name: 'ignore-cs-base',
    layer: 'l0',
    bug: 'the RIP of a soft event is matched as a linear address without the CS base: with a non-zero base the L1-given next_rip is not recognised and the INT is decoded again',
    source: '[kvm-csbase] soft_int_csbase from the wrong VMCB; [kvm-2022] kvm_is_linear_rip(soft_int_old_rip + soft_int_csbase)',
    bites: 'model/l0/reinject.ts: matching the interrupted RIP with the soft-event state',
  },
  {
    name: 'icebp-trap',
    layer: 'svm',
    bug: 'EVENTINJ TYPE 3 vector 1 is given the trap semantics of ICEBP (next_rip pushed, gate DPL checked) instead of an ordinary #DB',
    source: '[apm] 15.20: injection does not support ICEBP\'s #DB; docs/svm-rules.md "Injection: #DB and ICEBP"',
    bites: 'model/svm/inject.ts: injectedEvent',
  },
  {
    name: 'accept-nmi-vector-exception',
    layer: 'svm',
    bug: 'VMRUN accepts EVENTINJ TYPE 3 with vector 2 (not an exception) and delivers it through gate 2',
    source: '[apm] 15.20; KVM nested_vmcb_check_controls / nested_check_event_inj (vector 2 refused for TYPE_EXEPT)',
    bites: 'model/svm/checks.ts: eventInjectionCheck',
  },
  {
    name: 'exit-code-low32',
    layer: 'svm',
    bug: 'VMEXIT_INVALID written as 0xffffffff in a 64-bit EXITCODE (only exit_code low half set)',
    source: '[apm] appendix C (VMEXIT_INVALID = -1, 64 bits); KVM keeps exit_code_hi separately and once left it 0',
    bites: 'model/svm/vmexit.ts: vmexitInvalid',
  },
  {
    name: 'next-rip-kept-on-vectoring-exit',
    layer: 'svm',
    bug: 'an exit taken while vectoring leaves next_rip as it was instead of clearing it',
    source: '[apm] 15.7.1; [kvm-2022] "next_rip is cleared on all exits that can occur while vectoring an event"',
    bites: 'model/svm/vmexit.ts: vmexit',
  },
  {
    name: 'stale-exitintinfo',
    layer: 'svm',
    bug: 'an exit with no event under delivery leaves EXITINTINFO as the previous exit wrote it (V = 1 from an earlier event)',
    source: '[apm] 15.7.2/15.7.3 (V = 1 only for an event under delivery)',
    bites: 'model/svm/vmexit.ts: vmexit',
  },
  {
    name: 'error-code-ignores-ev',
    layer: 'svm',
    bug: 'an injected exception pushes an error code when its vector has one, whatever EVENTINJ.EV says',
    source: '[apm] 15.20 ("ERRORCODE … if EV is set to 1"); docs/svm-rules.md "Injection: error code and EV"',
    bites: 'model/svm/inject.ts: injectedEvent',
  },
] as const satisfies readonly Mutant[];

export type MutantName = (typeof MUTANTS)[number]['name'];

export function isMutantName(name: string): name is MutantName {
  return MUTANTS.some((m) => m.name === name);
}

export function findMutant(name: MutantName): Mutant {
  return MUTANTS.find((m) => m.name === name)!;
}

const active = new WeakMap<Cpu, ReadonlySet<MutantName>>();

/** Switch mutants on for this CPU (none by default). */
export function setMutants(cpu: Cpu, names: Iterable<MutantName>): void {
  const s = new Set(names);
  if (s.size) active.set(cpu, s);
  else active.delete(cpu);
}

/** Is this mutant switched on for this CPU? */
export function mutantOn(cpu: Cpu, name: MutantName): boolean {
  return active.get(cpu)?.has(name) ?? false;
}
