// Instructions that raise or return from events, and the far control transfers (APM vol. 3
// ch. 3–4: INT n, INT3, INTO, INT1/ICEBP, BOUND, UD2, IRET/IRETD/IRETQ, JMP/CALL (far), RET
// (far); APM vol. 2 4.10–4.11 for the privilege checks, 8.2 for the event types).
//
// An instruction that raises an event throws it (RaisedEvent for traps, Fault for faults): the
// run loop's catch hands it to events/delivery.ts, which pushes `returnRip` — the next
// instruction for traps and INT n, the instruction itself for faults — so prefixes count in the
// pushed RIP exactly as the decoder counts them in the instruction's length.
//
// Far JMP and CALL share iced's mnemonics "Jmp"/"Call" with the near forms (control.ts): they are
// registered here by form (registry.defineForm). Call gates, task gates, TSS targets, task
// returns (IRET with NT=1 outside long mode) and virtual-8086 mode stop the model with a message.
//
// The selector checks and the segment loads are segmentation.ts's, shared with MOV Sreg and event
// delivery (readCodeDescriptor, checkCodeForJump/Return, checkStackForReturn; loadCodeSegment,
// loadDescriptor, loadNullStack, nullifyDataSegmentsForCpl). Each transfer checks everything —
// CS, SS, the target RIP, for CALL the pushes — before it loads anything; loading sets the
// descriptors' accessed bits (APM vol. 2 4.7.2, 4.7.3) before any register changes.

import type { Cpu, Handler } from '../cpu/cpu.ts';
import { isCanonical, maskOf } from '../cpu/cpu.ts';
import { ATTR, GPR, SEG, type Segment } from '../cpu/state.ts';
import { Fault, ModelStop, gp, ud } from '../cpu/fault.ts';
import { F } from '../cpu/flags.ts';
import type { Insn, Operand } from '../decode.ts';
import { VEC } from '../../arch/x86.ts';
import { RaisedEvent } from '../events/classes.ts';
import {
  attribOf, checkCodeForJump, checkCodeForReturn, checkStackForReturn, loadCodeSegment, loadDescriptor, loadNullStack, loadRealModeSegment,
  nullifyDataSegmentsForCpl, readCodeDescriptor, segmentFromDescriptor, setAccessed, type Descriptor,
} from '../segmentation.ts';
import { define, defineForm } from './registry.ts';

// ---- events raised by instructions --------------------------------------------------------

/**
 * INT n (CD ib): a software interrupt through gate n, DPL-checked, pushing the next RIP (vol. 3
 * INT). `int $3` (CD 03) is this too — a 'softint', not INT3's 'softexception'.
 */
define('Int', (_cpu, insn) => {
  const op = insn.ops[0]!;
  if (op.kind !== 'imm') throw new ModelStop(`INT with a ${op.kind} operand`);
  throw new RaisedEvent({ vector: Number(op.value), kind: 'softint', returnRip: insn.next, insnRip: insn.ip });
});

/** INT3 (CC): #BP as a trap, DPL-checked like INT n (vol. 3 INT3; vol. 2 8.2.4). */
define('Int3', (_cpu, insn) => {
  throw new RaisedEvent({ vector: VEC.BP, kind: 'softexception', returnRip: insn.next, insnRip: insn.ip });
});

/**
 * INTO (CE): #OF as a trap when OF = 1, nothing when OF = 0 (vol. 3 INTO; vol. 2 8.2.5). Invalid
 * in 64-bit mode (#UD; the decoder already gives CE there as an invalid opcode).
 */
define('Into', (cpu, insn) => {
  if (cpu.mode64) throw ud();
  if (cpu.rflags & F.OF) throw new RaisedEvent({ vector: VEC.OF, kind: 'softexception', returnRip: insn.next, insnRip: insn.ip });
});

/**
 * INT1 / ICEBP (F1): #DB as a trap through vector 1 without the gate-DPL check (vol. 3 INT1).
 * DR6 is left unchanged: 13.1.1.3 lists what sets each DR6 bit (Bn: address breakpoints, BD:
 * general detect, BS: single step, BT: task switch) and ICEBP is none of them; the manual says
 * nothing else, so the model writes nothing (the l1.icebp template records what backends do).
 */
define('Int1', (_cpu, insn) => {
  throw new RaisedEvent({ vector: VEC.DB, kind: 'icebp', returnRip: insn.next, insnRip: insn.ip });
});

/**
 * BOUND r16, m16&16 / r32, m32&32: #BR as a fault when the signed index is below the lower or
 * above the upper bound (vol. 3 BOUND; vol. 2 8.2.6). Invalid in 64-bit mode (62 is EVEX there).
 */
define('Bound', (cpu, insn) => {
  if (cpu.mode64) throw ud();
  const [reg, mem] = insn.ops as [Operand, Operand];
  if (reg.kind !== 'reg' || mem.kind !== 'mem') throw ud(); // the register form is #UD (vol. 3 BOUND)
  const size = reg.size;
  const ea = cpu.effectiveAddress(mem);
  const lower = BigInt.asIntN(size * 8, cpu.read(mem.seg, ea, size));
  const upper = BigInt.asIntN(size * 8, cpu.read(mem.seg, (ea + BigInt(size)) & maskOf(mem.addrSize), size));
  const index = BigInt.asIntN(size * 8, cpu.getReg(reg.reg));
  if (index < lower || index > upper) throw new Fault(VEC.BR);
});

/** UD2: #UD (vol. 3 UD2). */
define('Ud2', () => {
  throw ud();
});

/**
 * Bytes the decoder finds invalid in the current mode (CE, 62 and D6 in 64-bit mode, unassigned
 * opcodes): #UD, a fault at the instruction's first byte (vol. 2 8.2.7).
 */
define('INVALID', () => {
  throw ud();
});

// ---- the stack as the returns read it ------------------------------------------------------

/** Pops that commit nothing until the instruction's checks are done (a fault leaves RSP alone). */
class StackCursor {
  private readonly mask: bigint;
  offset: bigint;
  constructor(private readonly cpu: Cpu) {
    this.mask = maskOf(cpu.stackSize);
    this.offset = cpu.gpr[GPR.RSP]! & this.mask;
  }
  pop(size: number): bigint {
    const v = this.cpu.read(SEG.SS, this.offset, size);
    this.offset = (this.offset + BigInt(size)) & this.mask;
    return v;
  }
  skip(bytes: bigint): void {
    this.offset = (this.offset + bytes) & this.mask;
  }
}

/**
 * Write `values` below RSP (first value highest) and return the RSP that results, which the
 * caller stores (with the current stack size) once nothing else can fault: RSP moves all or nothing.
 */
function writePushes(cpu: Cpu, values: bigint[], size: number): bigint {
  const m = maskOf(cpu.stackSize);
  const rsp = cpu.gpr[GPR.RSP]! & m;
  const lins = values.map((_, i) => cpu.linear(SEG.SS, (rsp - BigInt(size * (i + 1))) & m, size));
  values.forEach((v, i) => cpu.writeLinear(lins[i]!, size, v & maskOf(size), cpu.cpl === 3 ? 2 : 0));
  return (rsp - BigInt(size * values.length)) & m;
}

/** 64-bit targets must be canonical; others lie within the CS limit (#GP(0): vol. 3 IRET, JMP, RET). */
function checkTarget(cs: Segment, rip: bigint, longMode: boolean): void {
  if (longMode && cs.attrib & ATTR.L) {
    if (!isCanonical(rip)) throw gp(0);
  } else if (rip > BigInt(cs.limit)) {
    throw gp(0);
  }
}

/** The SS a return pops: its selector and checked descriptor, or none for a null SS (checkStackForReturn). */
interface PoppedStack {
  selector: number;
  descriptor: Descriptor | undefined;
}

/**
 * Load SS:RSP popped by a return to `cpl` (a null SS: loadNullStack): 64-bit code gets all of RSP;
 * elsewhere the new stack's B bit says 32 or 16 bits.
 */
function loadStack(cpu: Cpu, ss: PoppedStack, cpl: number, rsp: bigint, to64: boolean): void {
  if (ss.descriptor) loadDescriptor(cpu, SEG.SS, ss.selector, ss.descriptor);
  else loadNullStack(cpu, cpl);
  if (to64) cpu.gpr[GPR.RSP] = rsp;
  else cpu.setGpr(GPR.RSP, cpu.seg[SEG.SS]!.attrib & ATTR.DB ? 4 : 2, rsp);
}

/**
 * The accessed bits of a transfer's CS (and popped SS) descriptors (APM vol. 2 4.7.2, 4.7.3),
 * written after every check and stack write and before any register changes: the transfer's last
 * step that can fault (#PF on the table page). loadCodeSegment and loadDescriptor then find them set.
 */
function markAccessed(cpu: Cpu, csSel: number, cs: Descriptor, ss?: PoppedStack): void {
  setAccessed(cpu, csSel, cs);
  if (ss?.descriptor) setAccessed(cpu, ss.selector, ss.descriptor);
}

// ---- IRET, IRETD, IRETQ (vol. 3 IRET; vol. 2 8.7.5, 8.9.5) ----------------------------------

/** RFLAGS bits IRET loads at any CPL (vol. 3 IRET); IOPL, VIF, VIP only at CPL 0; IF only when CPL ≤ IOPL. */
const IRET_ALWAYS = F.CF | F.PF | F.AF | F.ZF | F.SF | F.TF | F.DF | F.OF | F.NT | F.RF | F.AC | F.ID;

function iretFlags(cpu: Cpu, image: bigint, size: number): number {
  let mask = IRET_ALWAYS;
  if (cpu.cpl === 0) mask |= F.IOPL | F.VIF | F.VIP;
  if (cpu.cpl <= (cpu.rflags & F.IOPL) >> 12) mask |= F.IF;
  if (size === 2) mask &= 0xffff;
  return (cpu.rflags & ~mask) | (Number(image & 0xffff_ffffn) & mask) | F.FIXED1;
}

function iret(size: 2 | 4 | 8): Handler {
  return (cpu) => {
    const st = new StackCursor(cpu);
    if (!cpu.protectedMode) {
      // real mode (vol. 3 IRET, "real mode"): IP, CS, FLAGS; no privilege checks
      const rip = st.pop(size) & maskOf(size);
      const sel = Number(st.pop(size) & 0xffffn);
      const flags = st.pop(size);
      let mask = IRET_ALWAYS | F.IOPL | F.IF;
      if (size === 2) mask &= 0xffff;
      loadRealModeSegment(cpu, SEG.CS, sel);
      cpu.setGpr(GPR.RSP, cpu.stackSize, st.offset);
      cpu.rflags = (cpu.rflags & ~mask) | (Number(flags & 0xffff_ffffn) & mask) | F.FIXED1;
      cpu.nextRip = rip;
      return;
    }
    if (cpu.rflags & F.VM) throw new ModelStop('IRET in virtual-8086 mode is not modelled');
    if (cpu.rflags & F.NT) {
      // long mode has no task switches: IRET with NT = 1 is #GP(0) (vol. 3 IRET)
      if (cpu.longMode) throw gp(0);
      throw new ModelStop('IRET with NT=1 (return from a nested task) is not modelled');
    }
    const rip = st.pop(size) & maskOf(size);
    const sel = Number(st.pop(size) & 0xffffn);
    const flags = st.pop(size);
    if (!cpu.longMode && cpu.cpl === 0 && size !== 2 && flags & BigInt(F.VM)) {
      throw new ModelStop('IRET to virtual-8086 mode is not modelled');
    }
    const csDesc = readCodeDescriptor(cpu, sel);
    const cpl = checkCodeForReturn(cpu, sel, csDesc);
    const cs = segmentFromDescriptor(sel, csDesc);
    const to64 = cpu.longMode && (cs.attrib & ATTR.L) !== 0;
    // 64-bit mode always pops SS:RSP; elsewhere only a return to an outer level does (vol. 2 8.9.5)
    const popsStack = cpu.mode64 || cpl > cpu.cpl;
    let ss: PoppedStack | undefined;
    let rsp = 0n;
    if (popsStack) {
      rsp = st.pop(size);
      const ssSel = Number(st.pop(size) & 0xffffn);
      ss = { selector: ssSel, descriptor: checkStackForReturn(cpu, ssSel, cpl, to64) };
    }
    checkTarget(cs, rip, cpu.longMode);

    markAccessed(cpu, sel, csDesc, ss);
    const oldCpl = cpu.cpl;
    cpu.rflags = iretFlags(cpu, flags, size);
    if (ss) loadStack(cpu, ss, cpl, size === 8 ? rsp : rsp & maskOf(size), to64);
    else cpu.setGpr(GPR.RSP, cpu.stackSize, st.offset);
    loadCodeSegment(cpu, sel, csDesc, cpl);
    if (cpl > oldCpl) nullifyDataSegmentsForCpl(cpu, cpl);
    cpu.nextRip = rip;
  };
}

define('Iret', iret(2));
define('Iretd', iret(4));
define('Iretq', iret(8));

// ---- far JMP, CALL, RET (vol. 3 JMP (Far), CALL (Far), RET (Far); vol. 2 4.10–4.11) ----------

/** Offset and selector of a far operand: ptr16:16/16:32 in the instruction, or m16:16/32/64. */
function farPointer(cpu: Cpu, op: Operand): { sel: number; offset: bigint; size: number } {
  if (op.kind === 'far') return { sel: op.selector, offset: op.offset, size: op.size };
  if (op.kind !== 'mem') throw new ModelStop(`far operand of kind ${op.kind}`);
  const size = op.size - 2;
  const ea = cpu.effectiveAddress(op);
  const offset = cpu.read(op.seg, ea, size);
  const sel = Number(cpu.read(op.seg, (ea + BigInt(size)) & maskOf(op.addrSize), 2));
  return { sel, offset, size };
}

/**
 * The code segment a far JMP or CALL names directly (APM vol. 2 4.11.1: checkCodeForJump). Call
 * gates, task gates and TSS descriptors would make it a gate transfer or a task switch, which the
 * model does not have: ModelStop; other system descriptors are #GP(selector) like any non-code one.
 */
function directTarget(cpu: Cpu, sel: number): Descriptor {
  const d = readCodeDescriptor(cpu, sel);
  const attrib = attribOf(d.low);
  if (!(attrib & ATTR.S)) {
    const type = attrib & ATTR.TYPE_MASK;
    if ([0x4, 0xc, 0x5, 0x1, 0x9, 0x3, 0xb].includes(type)) {
      throw new ModelStop(`far transfer through a ${type === 0x5 ? 'task gate' : type === 0x4 || type === 0xc ? 'call gate' : 'TSS'} (selector 0x${sel.toString(16)}) is not modelled`);
    }
  }
  checkCodeForJump(cpu, sel, d);
  return d;
}

function farJmp(cpu: Cpu, insn: Insn): void {
  const { sel, offset } = farPointer(cpu, insn.ops[0]!);
  if (!cpu.protectedMode || cpu.rflags & F.VM) {
    loadRealModeSegment(cpu, SEG.CS, sel);
    cpu.nextRip = offset;
    return;
  }
  const d = directTarget(cpu, sel);
  checkTarget(segmentFromDescriptor(sel, d), offset, cpu.longMode);
  loadCodeSegment(cpu, sel, d, cpu.cpl);
  cpu.nextRip = offset;
}

/**
 * CALL far pushes CS (zero-padded to the operand size) and the next RIP with the operand size,
 * 16, 32 or 64 bits, in 64-bit mode too (vol. 3 CALL (Far): PUSH.v).
 */
function farCall(cpu: Cpu, insn: Insn): void {
  const { sel, offset, size } = farPointer(cpu, insn.ops[0]!);
  const ret = [BigInt(cpu.seg[SEG.CS]!.selector), insn.next];
  if (!cpu.protectedMode || cpu.rflags & F.VM) {
    cpu.setGpr(GPR.RSP, cpu.stackSize, writePushes(cpu, ret, size));
    loadRealModeSegment(cpu, SEG.CS, sel);
    cpu.nextRip = offset;
    return;
  }
  const d = directTarget(cpu, sel);
  checkTarget(segmentFromDescriptor(sel, d), offset, cpu.longMode);
  const rsp = writePushes(cpu, ret, size);
  markAccessed(cpu, sel, d);
  // RSP with the caller's stack size, before CS (and so 64-bit mode or not) changes
  cpu.setGpr(GPR.RSP, cpu.stackSize, rsp);
  loadCodeSegment(cpu, sel, d, cpu.cpl);
  cpu.nextRip = offset;
}

const FAR_SIZE: Record<string, number> = { Retfw: 2, Retfw_imm16: 2, Retfd: 4, Retfd_imm16: 4, Retfq: 8, Retfq_imm16: 8 };

/**
 * RET far [imm16]: pops RIP and CS; to an outer level also RSP and SS, and the immediate is
 * released from both stacks (vol. 3 RET (Far)). 64-bit mode pops SS:RSP only on a privilege
 * change, unlike IRET.
 */
function farRet(cpu: Cpu, insn: Insn): void {
  const size = FAR_SIZE[insn.code] ?? cpu.bitness / 8;
  const imm = insn.ops[0]?.kind === 'imm' ? insn.ops[0].value : 0n;
  const st = new StackCursor(cpu);
  const rip = st.pop(size) & maskOf(size);
  const sel = Number(st.pop(size) & 0xffffn);
  if (!cpu.protectedMode || cpu.rflags & F.VM) {
    st.skip(imm);
    loadRealModeSegment(cpu, SEG.CS, sel);
    cpu.setGpr(GPR.RSP, cpu.stackSize, st.offset);
    cpu.nextRip = rip;
    return;
  }
  const csDesc = readCodeDescriptor(cpu, sel);
  const cpl = checkCodeForReturn(cpu, sel, csDesc);
  const cs = segmentFromDescriptor(sel, csDesc);
  const to64 = cpu.longMode && (cs.attrib & ATTR.L) !== 0;
  st.skip(imm);
  let ss: PoppedStack | undefined;
  let rsp = 0n;
  if (cpl > cpu.cpl) {
    rsp = st.pop(size);
    const ssSel = Number(st.pop(size) & 0xffffn);
    ss = { selector: ssSel, descriptor: checkStackForReturn(cpu, ssSel, cpl, to64) };
    rsp = (rsp + imm) & maskOf(size);
  }
  checkTarget(cs, rip, cpu.longMode);
  markAccessed(cpu, sel, csDesc, ss);
  const oldCpl = cpu.cpl;
  if (ss) loadStack(cpu, ss, cpl, rsp, to64);
  else cpu.setGpr(GPR.RSP, cpu.stackSize, st.offset);
  loadCodeSegment(cpu, sel, csDesc, cpl);
  if (cpl > oldCpl) nullifyDataSegmentsForCpl(cpu, cpl);
  cpu.nextRip = rip;
}

define('Retf', farRet);
for (const code of ['Jmp_ptr1616', 'Jmp_ptr1632', 'Jmp_m1616', 'Jmp_m1632', 'Jmp_m1664']) defineForm(code, farJmp);
for (const code of ['Call_ptr1616', 'Call_ptr1632', 'Call_m1616', 'Call_m1632', 'Call_m1664']) defineForm(code, farCall);
