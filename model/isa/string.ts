// String instructions (APM vol. 1 3.3.8 "String", 3.5.1 "Repeat Prefixes"; vol. 3 ch. 3: STOS,
// LODS, MOVS, CMPS, SCAS and vol. 3 1.2.6 "Repeat Prefixes"). INS/OUTS are not modelled.
//
// Operands come from the decoder as [seg:rSI] (segment overridable, DS by default) and [ES:rDI]
// (never overridden), with the address size (16/32/64 bits, 67h) that also sizes the counter
// rCX under a REP prefix. After each element rSI/rDI move by the element size, forward when
// RFLAGS.DF = 0 and backward when DF = 1.
//
// A repeated instruction runs to its end in one handler call. Each iteration commits rSI, rDI
// and rCX before the next one starts, so an exception part-way (a #PF on the next page) leaves
// them describing the iterations done: the faulting one has not updated them, and rIP still
// points at the instruction, so the handler's IRET resumes the rest (APM vol. 3 1.2.6).
// Interrupts and single-step traps between iterations are not modelled.
//
// F2 (REPNE) on MOVS, STOS and LODS repeats as F3 does: ZF is examined only by CMPS and SCAS.

import type { Cpu } from '../cpu/cpu.ts';
import { maskOf } from '../cpu/cpu.ts';
import { F, subFlags, withStatus } from '../cpu/flags.ts';
import { ModelStop } from '../cpu/fault.ts';
import { GPR, SEG } from '../cpu/state.ts';
import type { Insn, Operand } from '../decode.ts';
import { define } from './registry.ts';

type StrOperand = Extract<Operand, { kind: 'str' }>;
type StringKind = 'stos' | 'lods' | 'movs' | 'cmps' | 'scas';

/** The [seg:rSI] operand if `index` is 6 (rSI), else the [ES:rDI] one, or undefined. */
function strOperand(insn: Insn, index: number): StrOperand | undefined {
  for (const op of insn.ops) if (op.kind === 'str' && op.reg === index) return op;
  return undefined;
}

/**
 * One element: reads/writes at the given rSI/rDI offsets. Returns the status flags of the
 * comparison for CMPS/SCAS, -1 for the others.
 */
function element(cpu: Cpu, kind: StringKind, size: number, srcSeg: number, si: bigint, di: bigint): number {
  switch (kind) {
    case 'stos': // [ES:rDI] ← rAX
      cpu.write(SEG.ES, di, size, cpu.getGpr(GPR.RAX, size));
      return -1;
    case 'lods': // rAX ← [seg:rSI]
      cpu.setGpr(GPR.RAX, size, cpu.read(srcSeg, si, size));
      return -1;
    case 'movs': // [ES:rDI] ← [seg:rSI]
      cpu.write(SEG.ES, di, size, cpu.read(srcSeg, si, size));
      return -1;
    case 'cmps': { // flags of [seg:rSI] − [ES:rDI]
      const a = cpu.read(srcSeg, si, size);
      const b = cpu.read(SEG.ES, di, size);
      return subFlags(a, b, 0n, (a - b) & maskOf(size), size);
    }
    default: { // scas: flags of rAX − [ES:rDI]
      const a = cpu.getGpr(GPR.RAX, size);
      const b = cpu.read(SEG.ES, di, size);
      return subFlags(a, b, 0n, (a - b) & maskOf(size), size);
    }
  }
}

function defineString(mnemonic: string, kind: StringKind, guardCode?: string): void {
  const usesSi = kind === 'lods' || kind === 'movs' || kind === 'cmps';
  const usesDi = kind !== 'lods';
  const compares = kind === 'cmps' || kind === 'scas';
  define(mnemonic, (cpu, insn) => {
    if (guardCode !== undefined && !insn.code.startsWith(guardCode)) {
      throw new ModelStop(`${insn.code} (SSE) is not modelled`);
    }
    const src = strOperand(insn, GPR.RSI);
    const any = src ?? strOperand(insn, GPR.RDI);
    if (any === undefined) throw new ModelStop(`${insn.code} without a string operand`);
    const size = any.size;
    const asize = any.addrSize; // the same for both string operands
    const amask = maskOf(asize);
    const srcSeg = src !== undefined ? src.seg : SEG.DS;
    const step = BigInt((cpu.rflags & F.DF) !== 0 ? -size : size);
    let si = cpu.gpr[GPR.RSI]! & amask;
    let di = cpu.gpr[GPR.RDI]! & amask;

    if (insn.rep === 'none') {
      const flags = element(cpu, kind, size, srcSeg, si, di);
      if (usesSi) cpu.setGpr(GPR.RSI, asize, (si + step) & amask);
      if (usesDi) cpu.setGpr(GPR.RDI, asize, (di + step) & amask);
      if (compares) cpu.rflags = withStatus(cpu.rflags, flags);
      return;
    }

    // REP/REPE/REPNE: while rCX ≠ 0 { one element; advance; rCX−−; for CMPS/SCAS stop when ZF
    // says so (REPE: ZF = 0, REPNE: ZF = 1) }
    const stopOnZf = insn.rep === 'rep' ? 0 : F.ZF; // REPE stops when ZF = 0, REPNE when ZF = 1
    let count = cpu.gpr[GPR.RCX]! & amask;
    let done = 0;
    try {
      while (count !== 0n) {
        const flags = element(cpu, kind, size, srcSeg, si, di);
        si = (si + step) & amask;
        di = (di + step) & amask;
        count = (count - 1n) & amask;
        done++;
        if (compares) {
          cpu.rflags = withStatus(cpu.rflags, flags);
          if ((flags & F.ZF) === stopOnZf) break;
        }
      }
    } finally {
      // the iterations done, also when one has faulted (it has not advanced the locals); with
      // none done (rCX = 0, or a fault in the first) the registers are not written at all
      if (done > 0) {
        if (usesSi) cpu.setGpr(GPR.RSI, asize, si);
        if (usesDi) cpu.setGpr(GPR.RDI, asize, di);
        cpu.setGpr(GPR.RCX, asize, count);
      }
    }
  });
}

for (const suffix of ['b', 'w', 'd', 'q']) {
  defineString(`Stos${suffix}`, 'stos');
  defineString(`Lods${suffix}`, 'lods');
  defineString(`Scas${suffix}`, 'scas');
  // MOVSD and CMPSD share their mnemonic with the SSE2 scalar-double instructions
  defineString(`Movs${suffix}`, 'movs', suffix === 'd' ? 'Movsd_m32_m32' : undefined);
  defineString(`Cmps${suffix}`, 'cmps', suffix === 'd' ? 'Cmpsd_m32_m32' : undefined);
}
