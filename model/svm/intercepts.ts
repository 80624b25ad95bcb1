// Intercepts (APM vol. 2 15.7–15.14): the EventHooks guest mode installs. Each hook decides from the
// control area VMRUN loaded whether an instruction or event is intercepted and, if so, performs the
// #VMEXIT with that exit's EXITINFO1/2, EXITINTINFO and next_rip (vmexit.ts).
//
// Priorities (the manual's; docs/svm-rules.md "Instruction intercepts", "Exception intercepts"):
//  - Instruction intercepts are checked after the instruction's simple exceptions (#UD, #GP for a
//    wrong CPL) and before memory or operand-value exceptions (15.9). INT n (0x75) is checked before
//    any exception (docs/svm-rules.md "Instruction intercepts"); VMMCALL's intercept comes before its
//    #UD (VMMCALL is #UD only when not intercepted); IRET, CPUID, ICEBP have no simple exception.
//  - Exception intercepts (15.12): an instruction's fault or trap is checked before delivery starts
//    (beforeDeliver: CR2 not yet written for #PF, DR6 already updated for #DB). INT n and external
//    interrupts never hit them, whatever the vector; ICEBP's #DB never hits the #DB intercept (it has
//    its own, 0x88). The event VMRUN injects is not checked against any intercept (15.20).
//  - An exception raised while delivering an event (onException) is checked against the exception
//    intercepts first, with EXITINTINFO = the event being delivered; only if not intercepted is it
//    combined into #DF (delivery.ts), whose intercept is then checked the same way, then SHUTDOWN.
//  - A nested page fault (onAbort) exits with VMEXIT_NPF, EXITINTINFO from the event under delivery.
//
// next_rip (with NRIPS; 15.7.1, docs/svm-rules.md "next_rip"): the next sequential RIP for the instruction intercepts
// (Table 15-7), MSR and IOIO, and the #BP/#OF/#BR of INT3/INTO/BOUND; 0 for every other exit — other
// exceptions, exits while vectoring, NPF, SHUTDOWN. The model also writes it for MOV CR/DR intercepts
// (its reading of Table 15-7; no template records it).
//
// EXITINFO1/2 written where the manual gives them no meaning are 0 (masked by masks.ts).

import type { Cpu, EventHooks } from '../cpu/cpu.ts';
import type { Fault, AccessAbort } from '../cpu/fault.ts';
import { GPR } from '../cpu/state.ts';
import type { Insn } from '../decode.ts';
import type { Event } from '../events/classes.ts';
import { VEC, pushesErrorCode } from '../../arch/x86.ts';
import { EXIT, INTERCEPT_MISC1 as M1, INTERCEPT_MISC2 as M2 } from '../../arch/svm.ts';
import { guestOf, svmInstructionFault, type GuestMode } from './guest.ts';
import { NestedPageFault } from './npt.ts';
import { exitIntInfoOf } from './inject.ts';
import { vmexit } from './vmexit.ts';

const misc1 = (g: GuestMode, bit: number): boolean => ((g.ctl.interceptMisc1 >>> bit) & 1) === 1;
const misc2 = (g: GuestMode, bit: number): boolean => ((g.ctl.interceptMisc2 >>> bit) & 1) === 1;
const excp = (g: GuestMode, vector: number): boolean => vector < 32 && ((g.ctl.interceptExceptions >>> vector) & 1) === 1;

/** IN/OUT/INS/OUTS mnemonics (iced). */
const IO_IN = new Set(['In', 'Insb', 'Insw', 'Insd']);
const IO_OUT = new Set(['Out', 'Outsb', 'Outsw', 'Outsd']);

/** The CPL/IOPL check of IN/OUT (#GP(0) when CPL > IOPL in protected mode, isa/system.ts). */
function ioFaults(cpu: Cpu): boolean {
  return cpu.protectedMode && cpu.cpl > ((cpu.rflags >> 12) & 3);
}

// ---- permission maps (15.10.1 IOPM, 15.11 MSRPM) ---------------------------------------------------------

/** IOPM: one bit per port; an access is intercepted if the bit of any byte it touches is set (15.10.1). */
export function ioIntercepted(cpu: Cpu, iopmBase: bigint, port: number, size: number): boolean {
  const base = Number(iopmBase & ~0xfffn);
  for (let p = port; p < port + size; p++) {
    // ports wrap past 0xFFFF into the IOPM's third page (15.10.1: the map is 12 KiB for that reason)
    if ((cpu.mem.read8(base + (p >> 3)) >> (p & 7)) & 1) return true;
  }
  return false;
}

/**
 * MSRPM (15.11): two bits per MSR (read at 2n, write at 2n+1) in three 2 KiB vectors: MSRs
 * 0000_0000–0000_1FFF at byte 0, C000_0000–C000_1FFF at 0x800, C001_0000–C001_1FFF at 0x1000.
 * MSRs outside these ranges are always intercepted (15.11: "Accesses to MSRs not covered by the
 * MSRPM always cause an intercept").
 */
export function msrIntercepted(cpu: Cpu, msrpmBase: bigint, msr: number, write: boolean): boolean {
  const ranges: [number, number][] = [[0x0000_0000, 0], [0xc000_0000, 0x800], [0xc001_0000, 0x1000]];
  for (const [start, off] of ranges) {
    if (msr >= start && msr < start + 0x2000) {
      const bit = (msr - start) * 2 + (write ? 1 : 0);
      const byte = cpu.mem.read8(Number(msrpmBase & ~0xfffn) + off + (bit >> 3));
      return ((byte >> (bit & 7)) & 1) === 1;
    }
  }
  return true;
}

/**
 * EXITINFO1 of an IOIO intercept (15.10.2, Figure 15-2): port in 31:16, address size A64/A32/A16 in
 * bits 9/8/7, operand size SZ32/SZ16/SZ8 in bits 6/5/4, REP 3, STR 2, TYPE 0 (1 = IN). The segment
 * field (12:10, for OUTS) is written with decode assists only: the model writes it for OUTS when
 * the profile has them, and masks.ts leaves it undefined.
 */
export function ioExitInfo1(cpu: Cpu, insn: Insn, port: number, size: number, input: boolean): bigint {
  let v = port << 16;
  const str = insn.mnemonic !== 'In' && insn.mnemonic !== 'Out';
  if (input) v |= 1;
  if (str) v |= 1 << 2;
  if (str && insn.rep !== 'none') v |= 1 << 3;
  v |= size === 1 ? 1 << 4 : size === 2 ? 1 << 5 : 1 << 6;
  const asz = str ? (insn.ops.find((o) => o.kind === 'str') as { addrSize: number } | undefined)?.addrSize ?? 8 : cpu.bitness / 8;
  v |= asz === 8 ? 1 << 9 : asz === 4 ? 1 << 8 : 1 << 7;
  if (str && !input) {
    const src = insn.ops.find((o) => o.kind === 'str') as { seg: number } | undefined;
    if (src) v |= (src.seg & 7) << 10;
  }
  return BigInt(v >>> 0);
}

// ---- instruction intercepts (15.9, Table 15-7; 15.10 IOIO; 15.11 MSR) -------------------------------------

/** The instruction intercepts: true when `insn` was intercepted (the #VMEXIT is done). */
export function instructionIntercept(cpu: Cpu, g: GuestMode, insn: Insn): boolean {
  const next = insn.next;
  const exit = (code: bigint, info1 = 0n, info2 = 0n): true => {
    vmexit(cpu, g, { code, info1, info2, nextRip: next });
    return true;
  };
  switch (insn.mnemonic) {
    case 'Int': {
      if (!misc1(g, M1.INTN)) return false;
      // EXITINFO1 = the vector with decode assists (15.8); without them it is not written (0, masked)
      const imm = insn.ops[0]?.kind === 'imm' ? insn.ops[0].value & 0xffn : 0n;
      return exit(EXIT.SWINT, g.decodeAssists ? imm : 0n);
    }
    case 'Int1': return misc2(g, M2.ICEBP) ? exit(EXIT.ICEBP) : false;
    case 'Vmmcall': return misc2(g, M2.VMMCALL) ? exit(EXIT.VMMCALL) : false;
    case 'Iret': case 'Iretd': case 'Iretq': return misc1(g, M1.IRET) ? exit(EXIT.IRET) : false;
    case 'Cpuid': return misc1(g, M1.CPUID) ? exit(EXIT.CPUID) : false;
    case 'Hlt':
      if (cpu.protectedMode && cpu.cpl !== 0) return false; // #GP first
      return misc1(g, M1.HLT) ? exit(EXIT.HLT) : false;
    case 'Rdtsc': return misc1(g, M1.RDTSC) ? exit(EXIT.RDTSC) : false;
    case 'Invlpg':
      if (cpu.protectedMode && cpu.cpl !== 0) return false;
      return misc1(g, M1.INVLPG) ? exit(EXIT.INVLPG) : false;
    case 'Vmrun': case 'Vmload': case 'Vmsave': case 'Stgi': case 'Clgi': case 'Invlpga': {
      if (svmInstructionFault(cpu)) return false; // #UD / #GP first (vol. 3 VMRUN pseudocode)
      const [bit, code] = {
        Vmrun: [M2.VMRUN, EXIT.VMRUN], Vmload: [M2.VMLOAD, EXIT.VMLOAD], Vmsave: [M2.VMSAVE, EXIT.VMSAVE],
        Stgi: [M2.STGI, EXIT.STGI], Clgi: [M2.CLGI, EXIT.CLGI], Invlpga: [-1, EXIT.INVLPGA],
      }[insn.mnemonic] as [number, bigint];
      const on = bit < 0 ? misc1(g, M1.INVLPGA) : misc2(g, bit);
      return on ? exit(code) : false;
    }
    case 'Rdmsr': case 'Wrmsr': {
      if (cpu.protectedMode && cpu.cpl !== 0) return false;
      if (!misc1(g, M1.MSR)) return false;
      const write = insn.mnemonic === 'Wrmsr';
      if (!msrIntercepted(cpu, g.ctl.msrpmBase, Number(cpu.gpr[GPR.RCX]! & 0xffff_ffffn), write)) return false;
      return exit(EXIT.MSR, write ? 1n : 0n);
    }
    case 'Mov': return crDrIntercept(cpu, g, insn, exit);
    default:
      if (IO_IN.has(insn.mnemonic) || IO_OUT.has(insn.mnemonic)) {
        if (ioFaults(cpu) || !misc1(g, M1.IOIO)) return false;
        const input = IO_IN.has(insn.mnemonic);
        const portOp = input ? insn.ops[1]! : insn.ops[0]!;
        const port = portOp.kind === 'imm' ? Number(portOp.value) : Number(cpu.gpr[GPR.RDX]! & 0xffffn);
        const size = input ? insn.ops[0]!.size : insn.ops[1]!.size;
        if (!ioIntercepted(cpu, g.ctl.iopmBase, port, size)) return false;
        // EXITINFO2 = the RIP of the next instruction (15.10.2)
        return exit(EXIT.IOIO, ioExitInfo1(cpu, insn, port, size, input), next);
      }
      return false;
  }
}

/**
 * MOV to/from CRn/DRn (15.9.1 CR/DR intercepts): INTERCEPT_CR/DR bits 15:0 reads, 31:16 writes;
 * exit code CR_READ/CR_WRITE/DR_READ/DR_WRITE + n. EXITINFO1 with decode assists (15.8): bit 63 =
 * MOV (1), bits 3:0 = the GPR; without decode assists 0 (masked). After the CPL check (#GP first).
 */
function crDrIntercept(cpu: Cpu, g: GuestMode, insn: Insn, exit: (code: bigint, info1?: bigint) => true): boolean {
  const [a, b] = insn.ops;
  if (!a || !b || a.kind !== 'reg' || b.kind !== 'reg') return false;
  const toSys = a.reg.kind === 'cr' || a.reg.kind === 'dr';
  const sys = toSys ? a.reg : b.reg;
  const gpr = toSys ? b.reg : a.reg;
  if (sys.kind !== 'cr' && sys.kind !== 'dr') return false;
  if (cpu.protectedMode && cpu.cpl !== 0) return false;
  const word = sys.kind === 'cr' ? g.ctl.interceptCr : g.ctl.interceptDr;
  const bit = sys.index + (toSys ? 16 : 0);
  if (((word >>> bit) & 1) === 0) return false;
  const base = sys.kind === 'cr' ? (toSys ? 0x10n : 0x00n) : toSys ? 0x30n : 0x20n;
  const info1 = g.decodeAssists ? (1n << 63n) | BigInt(gpr.index & 0xf) : 0n;
  return exit(base + BigInt(sys.index), info1);
}

// ---- exception and interrupt intercepts (15.12, 15.13) ----------------------------------------------------

/** EXITINFO1 of an exception intercept: the error code for vectors that push one (15.12), else 0. */
function excpInfo1(vector: number, errorCode: number | undefined): bigint {
  return pushesErrorCode(vector) && errorCode !== undefined ? BigInt(errorCode >>> 0) : 0n;
}

/** An instruction's own fault or trap, an INT n, or an external event, before delivery starts. */
function eventIntercept(cpu: Cpu, g: GuestMode, ev: Event): boolean {
  if (ev === g.injecting) return false; // 15.20: the injected event is not checked against the intercepts
  switch (ev.kind) {
    case 'softint': case 'icebp': return false; // own intercepts (0x75, 0x88), checked before execution
    case 'external': return misc1(g, M1.INTR) ? (vmexit(cpu, g, { code: EXIT.INTR }), true) : false;
    case 'nmi': return misc1(g, M1.NMI) ? (vmexit(cpu, g, { code: EXIT.NMI }), true) : false;
    case 'exception': case 'softexception': break;
  }
  if (!excp(g, ev.vector)) return false;
  // next_rip: INT3 / INTO (softexception) and BOUND's #BR give the next instruction (15.7.1)
  let nextRip = 0n;
  if (ev.kind === 'softexception') nextRip = ev.returnRip;
  else if (ev.vector === VEC.BR && cpu.current?.mnemonic === 'Bound') nextRip = cpu.current.next;
  vmexit(cpu, g, {
    code: EXIT.EXCP_BASE + BigInt(ev.vector),
    info1: excpInfo1(ev.vector, ev.errorCode),
    // #PF: the faulting address; CR2 itself is not written before the intercept (15.12)
    info2: ev.vector === VEC.PF && ev.cr2 !== undefined ? ev.cr2 : 0n,
    nextRip,
  });
  return true;
}

/** An exception raised while delivering `during` (15.7.2): EXITINTINFO = `during`, next_rip = 0. */
function deliveryIntercept(cpu: Cpu, g: GuestMode, fault: Fault, during: Event): boolean {
  if (!excp(g, fault.vector)) return false;
  vmexit(cpu, g, {
    code: EXIT.EXCP_BASE + BigInt(fault.vector),
    info1: excpInfo1(fault.vector, fault.errorCode),
    info2: fault.vector === VEC.PF && fault.cr2 !== undefined ? fault.cr2 : 0n,
    intInfo: exitIntInfoOf(during),
    nextRip: 0n,
  });
  return true;
}

/** The hooks VMRUN installs on the CPU while the guest runs. */
export const GUEST_HOOKS: EventHooks = {
  beforeExecute(cpu, insn) {
    const g = guestOf(cpu);
    return g !== undefined && instructionIntercept(cpu, g, insn);
  },
  beforeDeliver(cpu, ev) {
    const g = guestOf(cpu);
    return g !== undefined && eventIntercept(cpu, g, ev);
  },
  onException(cpu, fault, during) {
    const g = guestOf(cpu);
    return g !== undefined && deliveryIntercept(cpu, g, fault, during);
  },
  onShutdown(cpu) {
    const g = guestOf(cpu);
    if (!g || !misc1(g, M1.SHUTDOWN)) return false;
    // 15.14.3 (docs/svm-rules.md "What every #VMEXIT writes"): after an intercepted shutdown the VMCB state is undefined
    vmexit(cpu, g, { code: EXIT.SHUTDOWN });
    return true;
  },
  onAbort(cpu, abort: AccessAbort) {
    const g = guestOf(cpu);
    if (!g || !(abort instanceof NestedPageFault)) return false;
    // 15.25.6: EXITINFO1 = the fault's bits, EXITINFO2 = the guest-physical address; EXITINTINFO =
    // the event whose delivery it interrupted (captured when the fault was raised); next_rip 0
    vmexit(cpu, g, {
      code: EXIT.NPF,
      info1: abort.exitInfo1,
      info2: abort.exitInfo2,
      intInfo: abort.during ? exitIntInfoOf(abort.during) : 0n,
      nextRip: 0n,
    });
    return true;
  },
};
