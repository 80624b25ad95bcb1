// The SVM instructions (APM vol. 3 ch. 4: VMRUN, VMMCALL, VMLOAD, VMSAVE, CLGI, STGI, INVLPGA,
// SKINIT; vol. 2 ch. 15). Their semantics live in model/svm/; this module only decodes operands
// and raises the instructions' own exceptions. In a guest, intercepts come first where the manual
// puts them first (model/svm/intercepts.ts runs before any handler here).

import type { Cpu } from '../cpu/cpu.ts';
import { Fault, ud } from '../cpu/fault.ts';
import type { Insn } from '../decode.ts';
import { flushTlb } from '../paging.ts';
import { svmInstructionFault, vmcbAddress } from '../svm/guest.ts';
import { vmload, vmrun, vmsave } from '../svm/vmrun.ts';
import { define } from './registry.ts';

function checked(cpu: Cpu): void {
  const f = svmInstructionFault(cpu);
  if (f) throw f;
}

function vmcbOperand(cpu: Cpu, insn: Insn): number {
  checked(cpu);
  const pa = vmcbAddress(cpu, insn.code);
  if (pa instanceof Fault) throw pa;
  return pa;
}

/** VMRUN rAX: #UD / #GP(0) as guest.ts says, then vmrun (model/svm/vmrun.ts). */
define('Vmrun', (cpu, insn) => vmrun(cpu, vmcbOperand(cpu, insn)));

/** VMLOAD / VMSAVE rAX (15.5.2). */
define('Vmload', (cpu, insn) => vmload(cpu, vmcbOperand(cpu, insn)));
define('Vmsave', (cpu, insn) => vmsave(cpu, vmcbOperand(cpu, insn)));

/** VMMCALL: #UD when not intercepted (vol. 3 VMMCALL: "VMMCALL is not intercepted" → #UD), at any CPL. */
define('Vmmcall', () => {
  throw ud();
});

/** CLGI / STGI (15.17): GIF. */
define('Clgi', (cpu) => {
  checked(cpu);
  cpu.gif = false;
});
define('Stgi', (cpu) => {
  checked(cpu);
  cpu.gif = true;
});

/**
 * INVLPGA rAX, ECX (15.16.2): invalidate the mapping of a virtual address in an ASID. The model's
 * TLB is not tagged by ASID and is dropped whole.
 */
define('Invlpga', (cpu) => {
  checked(cpu);
  flushTlb(cpu);
  cpu.flushDecodeCache();
});

/** SKINIT (15.27, secure init): not modelled; #UD, as on a part without the SKINIT feature (CPUID Fn8000_0001 ECX[12]). */
define('Skinit', () => {
  throw ud();
});
