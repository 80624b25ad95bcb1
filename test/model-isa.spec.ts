// The general-purpose instruction groups of the model (model/isa/{data,arith,logic,control,
// string}.ts), one instruction at a time in 64-bit mode (and a few in 32-bit protected mode).
//
// Machine code is written here as bytes (encoded by hand from APM vol. 3 ch. 2 "Instruction
// Encoding" and the opcode maps of appendix A) and every expectation is derived by hand from the
// instruction's page in APM vol. 3 (pub. 24594) ch. 3, cited as "APM <INSN>"; flags the manual
// leaves undefined are asserted only where model/cpu/flags.ts documents the model's rule.

import assert from 'node:assert/strict';
import { ACC, Cpu, type CpuHooks, type DecodedInsn } from '../model/cpu/cpu.ts';
import { F } from '../model/cpu/flags.ts';
import { Fault } from '../model/cpu/fault.ts';
import { ATTR, GPR, SEG } from '../model/cpu/state.ts';
import { PhysicalMemory } from '../model/memory.ts';
import { setCodeMode } from './support/cpu-mode.ts';
import { handlerFor } from '../model/isa/index.ts';

// ---- harness ------------------------------------------------------------------------------------

const CODE = 0x1000n;
const DATA = 0x3000;
const STACK = 0x8000n;
const { RAX, RCX, RDX, RBX, RSP, RSI, RDI } = GPR;

interface Env {
  cpu: Cpu;
  mem: PhysicalMemory;
  /** Linear pages (4 KiB numbers) whose writes raise #PF (for faults part-way through REP). */
  readOnlyPages: Set<number>;
}

/** A CPU in 64-bit mode (EFER.LME|LMA, CR0.PE|PG, CS.L = 1), identity translation. */
function cpu64(bits: 32 | 64 = 64): Env {
  const mem = new PhysicalMemory(1 << 20);
  const readOnlyPages = new Set<number>();
  const hooks: CpuHooks = {
    translate(_cpu, linear, access) {
      if ((access & ACC.WRITE) !== 0 && readOnlyPages.has(Number(linear >> 12n))) {
        throw new Fault(14, 0x3, linear); // #PF: P = 1, W/R = 1 (APM vol. 2 8.4.2)
      }
      return Number(linear);
    },
    handlerFor,
    portIn: () => 0xffff_ffff,
    portOut: () => {},
  };
  const cpu = new Cpu(mem, hooks);
  setCodeMode(cpu, bits);
  if (bits === 32) {
    for (const s of [SEG.DS, SEG.ES, SEG.SS]) cpu.seg[s]!.attrib |= ATTR.DB;
  }
  cpu.rip = CODE;
  cpu.gpr[RSP] = STACK;
  return { cpu, mem, readOnlyPages };
}

function bytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
}

/** One instruction as Machine.step does it: fetch, exec, rip ← nextRip. Faults propagate. */
function step(cpu: Cpu): DecodedInsn {
  const insn = cpu.fetch();
  cpu.current = insn;
  cpu.nextRip = insn.next;
  insn.exec(cpu, insn);
  cpu.rip = cpu.nextRip;
  return insn;
}

/** Put `hex` at RIP and execute `n` instructions from it. */
function run(env: Env, hex: string, n = 1): DecodedInsn {
  env.mem.load(Number(env.cpu.rip), bytes(hex));
  let last: DecodedInsn | undefined;
  for (let i = 0; i < n; i++) last = step(env.cpu);
  return last!;
}

/** A fresh 64-bit CPU with some registers set, after one instruction. */
function exec(hex: string, regs: Partial<Record<number, bigint>> = {}, rflags = 0x2): Env {
  const env = cpu64();
  for (const [r, v] of Object.entries(regs)) env.cpu.gpr[Number(r)] = v!;
  env.cpu.rflags = rflags;
  run(env, hex);
  return env;
}

const STATUS_NAMES = ['CF', 'PF', 'AF', 'ZF', 'SF', 'OF'] as const;

/** The status flags that are set, as names in a fixed order ("CF ZF"). */
function status(cpu: Cpu, only: readonly string[] = STATUS_NAMES): string {
  return STATUS_NAMES.filter((n) => only.includes(n) && (cpu.rflags & F[n]) !== 0).join(' ');
}

function expectFault(env: Env, hex: string, vector: number, errorCode?: number): void {
  env.mem.load(Number(env.cpu.rip), bytes(hex));
  const rip = env.cpu.rip;
  assert.throws(() => step(env.cpu), (e: unknown) => {
    assert.ok(e instanceof Fault, `expected a Fault, got ${String(e)}`);
    assert.equal(e.vector, vector);
    assert.equal(e.errorCode, errorCode);
    return true;
  });
  assert.equal(env.cpu.rip, rip, 'a fault leaves RIP at the instruction');
}

// ---- decode lengths -------------------------------------------------------------------------------

describe('model isa: instruction lengths with prefixes', () => {
  it('3e 48 8b 44 24 08 is mov rax, ds:[rsp+8]: 6 bytes, reads the qword', () => {
    // DS prefix (ignored in 64-bit mode, APM vol. 1 3.5.2), REX.W, 8B /r, ModRM 44 (mod 01, reg
    // RAX, rm SIB), SIB 24 (base RSP, no index), disp8 8
    const env = cpu64();
    env.mem.write64(Number(STACK) + 8, 0x0123_4567_89ab_cdefn);
    const insn = run(env, '3e 48 8b 44 24 08');
    assert.equal(insn.length, 6);
    assert.equal(env.cpu.rip, CODE + 6n);
    assert.equal(env.cpu.gpr[RAX], 0x0123_4567_89ab_cdefn);
  });

  it('multi-byte NOPs advance RIP by their length and touch nothing', () => {
    // RAX non-canonical: the NOP's memory operand would #GP if it were accessed (APM NOP: it is not)
    for (const [hex, len] of [
      ['90', 1], ['66 90', 2], ['0f 1f 00', 3], ['0f 1f 40 00', 4], ['0f 1f 44 00 00', 5], ['66 0f 1f 44 00 00', 6],
      ['0f 1f 80 00 00 00 00', 7], ['0f 1f 84 00 00 00 00 00', 8], ['66 0f 1f 84 00 00 00 00 00', 9],
      ['66 2e 0f 1f 84 00 00 00 00 00', 10], ['48 0f 1f 00', 4], ['f3 90', 2],
    ] as const) {
      const env = exec(hex, { [RAX]: 0x8000_0000_0000_0000n });
      assert.equal(env.cpu.rip, CODE + BigInt(len), hex);
      assert.equal(env.cpu.gpr[RAX], 0x8000_0000_0000_0000n, hex);
      assert.equal(env.cpu.gpr[RSP], STACK, hex);
    }
  });
});

// ---- data transfer --------------------------------------------------------------------------------

describe('model isa: MOV and friends (APM MOV, MOVZX, MOVSX, MOVSXD, LEA)', () => {
  it('32-bit writes zero-extend, 16- and 8-bit writes merge (APM vol. 1 3.1.2.3)', () => {
    const init = { [RAX]: 0x1122_3344_5566_7788n };
    assert.equal(exec('b8 ff ff ff ff', init).cpu.gpr[RAX], 0xffff_ffffn); // mov eax, -1
    assert.equal(exec('66 b8 34 12', init).cpu.gpr[RAX], 0x1122_3344_5566_1234n); // mov ax, 0x1234
    assert.equal(exec('b0 aa', init).cpu.gpr[RAX], 0x1122_3344_5566_77aan); // mov al, 0xaa
    assert.equal(exec('b4 aa', init).cpu.gpr[RAX], 0x1122_3344_5566_aa88n); // mov ah, 0xaa
    // C7 /0 with REX.W: imm32 sign-extended to 64 bits
    assert.equal(exec('48 c7 c0 00 00 00 80', init).cpu.gpr[RAX], 0xffff_ffff_8000_0000n);
  });

  it('AH..BH without REX, SPL..DIL with any REX', () => {
    // 88 /r mov r/m8, r8; ModRM E3: reg 100, rm 011 → mov bl, ah (no REX) / mov bl, spl (REX)
    const regs = { [RAX]: 0xaa00n, [RSP]: 0x55n, [RBX]: 0xffff_ffff_ffff_ffffn };
    assert.equal(exec('88 e3', regs).cpu.gpr[RBX], 0xffff_ffff_ffff_ffaan);
    assert.equal(exec('40 88 e3', regs).cpu.gpr[RBX], 0xffff_ffff_ffff_ff55n);
  });

  it('movabs loads a 64-bit immediate; moffs forms address an absolute 64-bit offset', () => {
    const env = exec('48 b8 88 77 66 55 44 33 22 11');
    assert.equal(env.cpu.gpr[RAX], 0x1122_3344_5566_7788n);
    assert.equal(env.cpu.rip, CODE + 10n);

    const m = cpu64();
    m.mem.write64(DATA, 0xfeed_face_cafe_beefn);
    run(m, '48 a1 00 30 00 00 00 00 00 00'); // mov rax, [0x3000]
    assert.equal(m.cpu.gpr[RAX], 0xfeed_face_cafe_beefn);
    assert.equal(m.cpu.rip, CODE + 10n);
    m.cpu.gpr[RAX] = 0x42n;
    run(m, 'a2 08 30 00 00 00 00 00 00'); // mov [0x3008], al
    assert.equal(m.mem.read8(DATA + 8), 0x42);
    assert.equal(m.mem.read8(DATA + 9), 0);
  });

  it('MOV r/m, Sreg stores the selector, zero-extended in a 32-bit register', () => {
    const env = cpu64();
    env.cpu.seg[SEG.DS]!.selector = 0x10;
    env.cpu.gpr[RAX] = 0xffff_ffff_ffff_ffffn;
    run(env, '8c d8'); // mov eax, ds
    assert.equal(env.cpu.gpr[RAX], 0x10n);
  });

  it('MOVZX, MOVSX, MOVSXD', () => {
    const regs = { [RAX]: 0xffff_ffff_ffff_ffffn, [RBX]: 0x1234_8080_8080n };
    assert.equal(exec('0f b6 c3', regs).cpu.gpr[RAX], 0x80n); // movzx eax, bl
    assert.equal(exec('0f b7 c3', regs).cpu.gpr[RAX], 0x8080n); // movzx eax, bx
    assert.equal(exec('48 0f be c3', regs).cpu.gpr[RAX], 0xffff_ffff_ffff_ff80n); // movsx rax, bl
    assert.equal(exec('0f bf c3', regs).cpu.gpr[RAX], 0xffff_8080n); // movsx eax, bx
    assert.equal(exec('66 0f be c3', regs).cpu.gpr[RAX], 0xffff_ffff_ffff_ff80n); // movsx ax, bl: merges
    assert.equal(exec('48 63 c3', regs).cpu.gpr[RAX], 0xffff_ffff_8080_8080n); // movsxd rax, ebx
    // movzx from memory reads one byte (the operand size of the source, APM MOVZX)
    const env = cpu64();
    env.mem.write32(DATA, 0xdeadbeef);
    env.cpu.gpr[RBX] = BigInt(DATA);
    run(env, '0f b6 03'); // movzx eax, byte [rbx]
    assert.equal(env.cpu.gpr[RAX], 0xefn);
  });

  it('LEA: RIP-relative, address-size wrap, operand-size truncation', () => {
    // 48 8D 05 disp32 at 0x1000: RIP-relative to the next instruction (0x1007) + 0x10 (APM vol. 1 2.2.5.1)
    assert.equal(exec('48 8d 05 10 00 00 00').cpu.gpr[RAX], 0x1017n);
    // negative displacement
    assert.equal(exec('48 8d 05 f0 ff ff ff').cpu.gpr[RAX], 0x1007n - 0x10n);
    const regs = { [RBX]: 0x1_ffff_ffffn, [RCX]: 2n, [RAX]: 0xffff_ffff_ffff_ffffn };
    // lea rax, [rbx+rcx]: 64-bit address size
    assert.equal(exec('48 8d 04 0b', regs).cpu.gpr[RAX], 0x2_0000_0001n);
    // 67h: ebx+ecx wraps at 32 bits (APM LEA: the address is computed at the address size)
    assert.equal(exec('67 48 8d 04 0b', regs).cpu.gpr[RAX], 0x1n);
    // 66h: the address truncated to 16 bits and merged into AX
    assert.equal(exec('66 8d 04 0b', regs).cpu.gpr[RAX], 0xffff_ffff_ffff_0001n);
  });
});

describe('model isa: stack (APM PUSH, POP; vol. 1 3.7.4)', () => {
  it('push/pop sizes: 8 bytes by default, 2 with 66h, imm8 sign-extended', () => {
    let env = exec('6a 80'); // push -128: 64-bit operand size
    assert.equal(env.cpu.gpr[RSP], STACK - 8n);
    assert.equal(env.mem.read64(Number(STACK) - 8), 0xffff_ffff_ffff_ff80n);

    env = exec('66 6a 80'); // pushw -128
    assert.equal(env.cpu.gpr[RSP], STACK - 2n);
    assert.equal(env.mem.read16(Number(STACK) - 2), 0xff80);

    env = exec('68 00 00 00 80'); // push imm32 sign-extended to 64
    assert.equal(env.mem.read64(Number(STACK) - 8), 0xffff_ffff_8000_0000n);

    env = exec('66 50', { [RAX]: 0x1234_5678n }); // push ax
    assert.equal(env.cpu.gpr[RSP], STACK - 2n);
    assert.equal(env.mem.read16(Number(STACK) - 2), 0x5678);

    env = exec('41 51', { 9: 0x99n }); // push r9
    assert.equal(env.mem.read64(Number(STACK) - 8), 0x99n);
  });

  it('pop reg: 64-bit, and 16-bit merging into the register', () => {
    const env = cpu64();
    env.mem.write64(Number(STACK), 0x1111_2222_3333_4444n);
    env.cpu.gpr[RBX] = 0xffff_ffff_ffff_ffffn;
    run(env, '66 5b'); // pop bx
    assert.equal(env.cpu.gpr[RBX], 0xffff_ffff_ffff_4444n);
    assert.equal(env.cpu.gpr[RSP], STACK + 2n);
    env.cpu.gpr[RSP] = STACK;
    run(env, '58'); // pop rax
    assert.equal(env.cpu.gpr[RAX], 0x1111_2222_3333_4444n);
    assert.equal(env.cpu.gpr[RSP], STACK + 8n);
  });

  it('push rsp pushes the value before the push; pop rsp loads the popped value', () => {
    let env = exec('54');
    assert.equal(env.mem.read64(Number(STACK) - 8), STACK);
    env = cpu64();
    env.mem.write64(Number(STACK), 0x7000n);
    run(env, '5c');
    assert.equal(env.cpu.gpr[RSP], 0x7000n);
  });

  it('push/pop memory operands', () => {
    const env = cpu64();
    env.mem.write64(DATA, 0xabcdn);
    env.cpu.gpr[RAX] = BigInt(DATA);
    run(env, 'ff 30'); // push qword [rax]
    assert.equal(env.mem.read64(Number(STACK) - 8), 0xabcdn);
    env.cpu.gpr[RAX] = BigInt(DATA + 0x10);
    run(env, '8f 00'); // pop qword [rax]
    assert.equal(env.mem.read64(DATA + 0x10), 0xabcdn);
    assert.equal(env.cpu.gpr[RSP], STACK);
  });

  it('pop [rsp] addresses its destination with the incremented RSP', () => {
    // APM POP / Intel SDM POP: "If the rSP register is used as a base register … the effective
    // address is computed after the pop increments rSP"
    const env = cpu64();
    env.mem.write64(Number(STACK), 0x5555n);
    env.mem.write64(Number(STACK) + 8, 0x6666n);
    run(env, '8f 04 24');
    assert.equal(env.cpu.gpr[RSP], STACK + 8n);
    assert.equal(env.mem.read64(Number(STACK) + 8), 0x5555n);
  });

  it('push fs pushes the selector zero-extended to 64 bits', () => {
    const env = cpu64();
    env.mem.write64(Number(STACK) - 8, 0xffff_ffff_ffff_ffffn);
    env.cpu.seg[SEG.FS]!.selector = 0x2b;
    run(env, '0f a0');
    assert.equal(env.cpu.gpr[RSP], STACK - 8n);
    assert.equal(env.mem.read64(Number(STACK) - 8), 0x2bn);
  });

  it('32-bit protected mode: push/pop are 4 bytes, the stack wraps at ESP', () => {
    const env = cpu64(32);
    env.cpu.gpr[RAX] = 0xaabb_ccddn;
    run(env, '50'); // push eax
    assert.equal(env.cpu.gpr[RSP], STACK - 4n);
    assert.equal(env.mem.read32(Number(STACK) - 4), 0xaabb_ccdd);
    run(env, '6a ff'); // push imm8 → dword 0xffffffff
    assert.equal(env.mem.read32(Number(STACK) - 8), 0xffff_ffff);
    run(env, '5b'); // pop ebx
    assert.equal(env.cpu.gpr[RBX], 0xffff_ffffn);
  });
});

describe('model isa: XCHG, CMOVcc, CBW.., BSWAP', () => {
  it('xchg registers; 87 C0 zero-extends EAX, 90 is NOP', () => {
    const regs = { [RAX]: 0x1_0000_0001n, [RBX]: 0x2_0000_0002n };
    let env = exec('48 87 d8', regs); // xchg rax, rbx
    assert.equal(env.cpu.gpr[RAX], 0x2_0000_0002n);
    assert.equal(env.cpu.gpr[RBX], 0x1_0000_0001n);
    env = exec('86 c4', { [RAX]: 0x1234n }); // xchg ah, al
    assert.equal(env.cpu.gpr[RAX], 0x3412n);
    assert.equal(exec('87 c0', regs).cpu.gpr[RAX], 0x1n); // xchg eax, eax: a 32-bit write
    assert.equal(exec('90', regs).cpu.gpr[RAX], 0x1_0000_0001n); // NOP (APM XCHG: 90 is NOP)
    env = exec('41 90', { 8: 0x8_0000_0008n, [RAX]: 0x1_0000_0001n }); // xchg r8d, eax
    assert.equal(env.cpu.gpr[8], 0x1n);
    assert.equal(env.cpu.gpr[RAX], 0x8n);
  });

  it('xchg with memory', () => {
    const env = cpu64();
    env.mem.write32(DATA, 0x1111);
    env.cpu.gpr[RBX] = BigInt(DATA);
    env.cpu.gpr[RAX] = 0x2222n;
    run(env, '87 03'); // xchg [rbx], eax
    assert.equal(env.mem.read32(DATA), 0x2222);
    assert.equal(env.cpu.gpr[RAX], 0x1111n);
  });

  it('CMOVcc moves when the condition holds; a 32-bit destination is zero-extended either way', () => {
    const regs = { [RAX]: 0xffff_ffff_0000_0001n, [RCX]: 0x2n };
    // APM CMOVcc: "the upper 32 bits of the destination are cleared even if the condition is false"
    assert.equal(exec('0f 44 c1', regs, 0x2).cpu.gpr[RAX], 0x1n); // cmove eax, ecx, ZF = 0
    assert.equal(exec('0f 44 c1', regs, 0x2 | F.ZF).cpu.gpr[RAX], 0x2n); // ZF = 1
    assert.equal(exec('48 0f 45 c1', regs, 0x2).cpu.gpr[RAX], 0x2n); // cmovne rax, rcx
    assert.equal(exec('48 0f 4c c1', regs, 0x2 | F.SF).cpu.gpr[RAX], 0x2n); // cmovl: SF ≠ OF
    assert.equal(exec('48 0f 4c c1', regs, 0x2 | F.SF | F.OF).cpu.gpr[RAX], 0xffff_ffff_0000_0001n);
  });

  it('CBW, CWDE, CDQE, CWD, CDQ, CQO (APM CBW/CWDE/CDQE, CWD/CDQ/CQO)', () => {
    assert.equal(exec('66 98', { [RAX]: 0xffff_0080n }).cpu.gpr[RAX], 0xffff_ff80n); // cbw
    assert.equal(exec('98', { [RAX]: 0xffff_ffff_0000_8000n }).cpu.gpr[RAX], 0xffff_8000n); // cwde
    assert.equal(exec('48 98', { [RAX]: 0x8000_0000n }).cpu.gpr[RAX], 0xffff_ffff_8000_0000n); // cdqe
    assert.equal(exec('66 99', { [RAX]: 0x8000n, [RDX]: 0x1_0000_0000n }).cpu.gpr[RDX], 0x1_0000_ffffn); // cwd
    assert.equal(exec('99', { [RAX]: 0x8000_0000n, [RDX]: 0x1_0000_0000n }).cpu.gpr[RDX], 0xffff_ffffn); // cdq
    assert.equal(exec('99', { [RAX]: 0x7fff_ffffn, [RDX]: 0x1_0000_0000n }).cpu.gpr[RDX], 0n);
    assert.equal(exec('48 99', { [RAX]: 1n << 63n }).cpu.gpr[RDX], 0xffff_ffff_ffff_ffffn); // cqo
  });

  it('BSWAP 32 and 64', () => {
    assert.equal(exec('0f c8', { [RAX]: 0xffff_ffff_1122_3344n }).cpu.gpr[RAX], 0x4433_2211n);
    assert.equal(exec('48 0f c8', { [RAX]: 0x0102_0304_0506_0708n }).cpu.gpr[RAX], 0x0807_0605_0403_0201n);
    assert.equal(exec('41 0f c9', { 9: 0x1122_3344n }).cpu.gpr[9], 0x4433_2211n); // bswap r9d
  });
});

// ---- arithmetic -----------------------------------------------------------------------------------

describe('model isa: ADD, ADC, SUB, SBB, CMP flags (APM ADD, SUB, CMP; vol. 1 3.1.4)', () => {
  it('add: signed overflow without carry, carry without overflow', () => {
    // 0x7fffffff + 1 = 0x80000000: OF (two positives give a negative), SF, AF (0xf + 0x1 carries
    // out of bit 3), PF (low byte 0x00 has an even number of ones), no CF
    let env = exec('01 d8', { [RAX]: 0x7fff_ffffn, [RBX]: 1n });
    assert.equal(env.cpu.gpr[RAX], 0x8000_0000n);
    assert.equal(status(env.cpu), 'PF AF SF OF');
    // 0xffffffff + 1 = 0 with carry: CF, ZF, AF, PF; no OF (−1 + 1)
    env = exec('01 d8', { [RAX]: 0xffff_ffffn, [RBX]: 1n });
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu), 'CF PF AF ZF');
    // 8-bit: 0x80 + 0x80 = 0x00: CF and OF (two negatives give 0)
    env = exec('00 e0', { [RAX]: 0x8080n }); // add al, ah
    assert.equal(env.cpu.gpr[RAX], 0x8000n);
    assert.equal(status(env.cpu), 'CF PF ZF OF');
    // 64-bit with a sign-extended imm8: rax = 1 + (−1) = 0
    env = exec('48 83 c0 ff', { [RAX]: 1n });
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu), 'CF PF AF ZF');
  });

  it('sub and cmp: borrow, signed overflow; cmp writes nothing', () => {
    // 0 − 1 = 0xffffffff: CF (borrow), SF, AF (borrow into bit 4), PF (0xff: eight ones)
    let env = exec('39 d8', { [RAX]: 0n, [RBX]: 1n }); // cmp eax, ebx
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu), 'CF PF AF SF');
    // 0x80000000 − 1 = 0x7fffffff: OF (negative − positive gives positive), AF, no CF
    env = exec('29 d8', { [RAX]: 0x8000_0000n, [RBX]: 1n }); // sub eax, ebx
    assert.equal(env.cpu.gpr[RAX], 0x7fff_ffffn);
    assert.equal(status(env.cpu), 'PF AF OF');
    // equal operands: ZF, PF only
    env = exec('48 3d 44 33 22 11', { [RAX]: 0x1122_3344n }); // cmp rax, imm32
    assert.equal(status(env.cpu), 'PF ZF');
  });

  it('adc and sbb take CF in', () => {
    let env = exec('11 d8', { [RAX]: 0xffff_ffffn, [RBX]: 0n }, 0x2 | F.CF); // adc eax, ebx
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu, ['CF', 'ZF', 'OF']), 'CF ZF');
    env = exec('19 d8', { [RAX]: 0n, [RBX]: 0n }, 0x2 | F.CF); // sbb eax, ebx
    assert.equal(env.cpu.gpr[RAX], 0xffff_ffffn);
    assert.equal(status(env.cpu, ['CF', 'ZF', 'SF', 'OF']), 'CF SF');
    env = exec('19 d8', { [RAX]: 5n, [RBX]: 2n }, 0x2); // sbb without CF is sub
    assert.equal(env.cpu.gpr[RAX], 3n);
  });

  it('inc and dec leave CF alone (APM INC, DEC)', () => {
    let env = exec('ff c0', { [RAX]: 0x7fff_ffffn }, 0x2 | F.CF); // inc eax
    assert.equal(env.cpu.gpr[RAX], 0x8000_0000n);
    assert.equal(status(env.cpu), 'CF PF AF SF OF');
    env = exec('ff c8', { [RAX]: 0n }, 0x2); // dec eax: 0 − 1 borrows, but CF stays 0
    assert.equal(env.cpu.gpr[RAX], 0xffff_ffffn);
    assert.equal(status(env.cpu), 'PF AF SF');
    env = exec('48 ff c0', { [RAX]: 0xffff_ffff_ffff_ffffn }, 0x2); // inc rax → 0, CF stays 0
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu), 'PF AF ZF');
    env = exec('fe c4', { [RAX]: 0x7f00n }, 0x2); // inc ah: 0x7f → 0x80 overflows
    assert.equal(env.cpu.gpr[RAX], 0x8000n);
    assert.equal(status(env.cpu, ['OF', 'SF', 'CF']), 'SF OF');
  });

  it('neg: CF = (operand ≠ 0), OF for the most negative value (APM NEG)', () => {
    let env = exec('f7 d8', { [RAX]: 0n }); // neg eax
    assert.equal(status(env.cpu), 'PF ZF');
    env = exec('f7 d8', { [RAX]: 0x8000_0000n });
    assert.equal(env.cpu.gpr[RAX], 0x8000_0000n);
    assert.equal(status(env.cpu, ['CF', 'OF', 'SF', 'ZF']), 'CF SF OF');
    env = exec('48 f7 d8', { [RAX]: 1n });
    assert.equal(env.cpu.gpr[RAX], 0xffff_ffff_ffff_ffffn);
    assert.equal(status(env.cpu, ['CF', 'OF', 'SF', 'ZF']), 'CF SF');
  });
});

describe('model isa: MUL, IMUL (APM MUL, IMUL)', () => {
  it('mul: rDX:rAX, AX for bytes; CF = OF = upper half non-zero', () => {
    let env = exec('f7 e3', { [RAX]: 0x8000_0000n, [RBX]: 4n, [RDX]: 0xffff_ffff_ffff_ffffn }); // mul ebx
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(env.cpu.gpr[RDX], 2n);
    assert.equal(status(env.cpu, ['CF', 'OF']), 'CF OF');
    env = exec('f6 e3', { [RAX]: 0xffff_0010n, [RBX]: 0x10n }); // mul bl: AX = 0x100
    assert.equal(env.cpu.gpr[RAX], 0xffff_0100n);
    assert.equal(status(env.cpu, ['CF', 'OF']), 'CF OF');
    env = exec('48 f7 e3', { [RAX]: 3n, [RBX]: 5n, [RDX]: 9n }); // mul rbx
    assert.equal(env.cpu.gpr[RAX], 15n);
    assert.equal(env.cpu.gpr[RDX], 0n);
    assert.equal(status(env.cpu, ['CF', 'OF']), '');
  });

  it('imul one operand: CF = OF = the upper half is not the sign extension of the lower', () => {
    let env = exec('f6 eb', { [RAX]: 0xfen, [RBX]: 3n }); // imul bl: −2 × 3 = −6
    assert.equal(env.cpu.gpr[RAX], 0xfffan);
    assert.equal(status(env.cpu, ['CF', 'OF']), '');
    env = exec('f6 eb', { [RAX]: 0x40n, [RBX]: 2n }); // 64 × 2 = 128 does not fit a signed byte
    assert.equal(env.cpu.gpr[RAX], 0x0080n);
    assert.equal(status(env.cpu, ['CF', 'OF']), 'CF OF');
    env = exec('48 f7 eb', { [RAX]: 0xffff_ffff_ffff_ffffn, [RBX]: 0xffff_ffff_ffff_ffffn }); // −1 × −1
    assert.equal(env.cpu.gpr[RAX], 1n);
    assert.equal(env.cpu.gpr[RDX], 0n);
  });

  it('imul two and three operands: truncated product, CF = OF on lost bits', () => {
    let env = exec('0f af c3', { [RAX]: 0x1_0001_0000n, [RBX]: 0x10000n }); // imul eax, ebx
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu, ['CF', 'OF']), 'CF OF');
    env = exec('48 0f af c3', { [RAX]: 0xffff_ffff_ffff_fffdn, [RBX]: 5n }); // −3 × 5
    assert.equal(env.cpu.gpr[RAX], 0xffff_ffff_ffff_fff1n);
    assert.equal(status(env.cpu, ['CF', 'OF']), '');
    env = exec('6b c3 fd', { [RAX]: 0xffff_ffff_ffff_ffffn, [RBX]: 7n }); // imul eax, ebx, −3
    assert.equal(env.cpu.gpr[RAX], 0xffff_ffebn);
    assert.equal(status(env.cpu, ['CF', 'OF']), '');
    env = exec('69 c3 00 00 01 00', { [RBX]: 0x10000n }); // imul eax, ebx, 0x10000: 2^32 lost
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu, ['CF', 'OF']), 'CF OF');
    env = exec('66 6b c3 ff', { [RAX]: 0xaaaa_0000n, [RBX]: 2n }); // imul ax, bx, −1: merges
    assert.equal(env.cpu.gpr[RAX], 0xaaaa_fffen);
  });
});

describe('model isa: DIV, IDIV and #DE (APM DIV, IDIV)', () => {
  it('div: quotient and remainder at each size', () => {
    let env = exec('f7 f3', { [RDX]: 1n, [RAX]: 5n, [RBX]: 2n }); // (2^32 + 5) / 2
    assert.equal(env.cpu.gpr[RAX], 0x8000_0002n);
    assert.equal(env.cpu.gpr[RDX], 1n);
    env = exec('f6 f3', { [RAX]: 261n, [RBX]: 10n }); // div bl: AL = 26, AH = 1
    assert.equal(env.cpu.gpr[RAX], 0x011an);
    env = exec('48 f7 f3', { [RAX]: 100n, [RDX]: 0n, [RBX]: 7n });
    assert.equal(env.cpu.gpr[RAX], 14n);
    assert.equal(env.cpu.gpr[RDX], 2n);
  });

  it('idiv truncates toward zero, the remainder takes the dividend\'s sign', () => {
    const env = exec('f7 fb', { [RDX]: 0xffff_ffffn, [RAX]: 0xffff_fff9n, [RBX]: 2n }); // −7 / 2
    assert.equal(env.cpu.gpr[RAX], 0xffff_fffdn); // −3
    assert.equal(env.cpu.gpr[RDX], 0xffff_ffffn); // −1
  });

  it('divide by zero and quotient overflow raise #DE with nothing changed', () => {
    for (const [hex, regs] of [
      ['f7 f3', { [RAX]: 5n, [RDX]: 0n, [RBX]: 0n }], // div ebx, 0
      ['f7 f3', { [RAX]: 0n, [RDX]: 2n, [RBX]: 2n }], // 2^33 / 2 = 2^32 does not fit 32 bits
      ['f6 f3', { [RAX]: 0x100n, [RBX]: 1n }], // 256 / 1 does not fit AL
      ['f7 fb', { [RAX]: 0x8000_0000n, [RDX]: 0xffff_ffffn, [RBX]: 0xffff_ffffn }], // −2^31 / −1 = 2^31
      ['48 f7 fb', { [RAX]: 1n, [RDX]: 0n, [RBX]: 0n }], // idiv rbx, 0
    ] as const) {
      const env = cpu64();
      for (const [r, v] of Object.entries(regs)) env.cpu.gpr[Number(r)] = v;
      const before = [...env.cpu.gpr];
      expectFault(env, hex, 0); // #DE is vector 0, no error code (APM vol. 2 8.2.1)
      assert.deepEqual([...env.cpu.gpr], before, hex);
    }
  });

  it('idiv: the most negative quotient fits', () => {
    // −256 / 2 = −128 = 0x80 fits a signed byte
    const env = exec('f6 fb', { [RAX]: 0xff00n, [RBX]: 2n });
    assert.equal(env.cpu.gpr[RAX]! & 0xffffn, 0x0080n);
  });
});

// ---- logic, shifts, bits ----------------------------------------------------------------------------

describe('model isa: AND, OR, XOR, NOT, TEST (APM AND …)', () => {
  it('clear CF and OF, set SF/ZF/PF from the result', () => {
    const all = 0x2 | F.CF | F.OF | F.AF;
    let env = exec('21 d8', { [RAX]: 0xff00_00f0n, [RBX]: 0x8000_00ffn }, all); // and eax, ebx
    assert.equal(env.cpu.gpr[RAX], 0x8000_00f0n);
    assert.equal(status(env.cpu), 'PF SF'); // 0xf0: four ones
    env = exec('31 c0', { [RAX]: 0xffff_ffff_ffff_ffffn }, all); // xor eax, eax
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu), 'PF ZF');
    env = exec('85 c0', { [RAX]: 0x1n }, all); // test eax, eax: no write
    assert.equal(status(env.cpu), '');
    env = exec('48 0d 00 00 00 80', { [RAX]: 1n }); // or rax, imm32 sign-extended
    assert.equal(env.cpu.gpr[RAX], 0xffff_ffff_8000_0001n);
  });

  it('not changes no flag', () => {
    const env = exec('f7 d0', { [RAX]: 0xffff_ffff_0f0f_0f0fn }, 0x2 | F.ZF);
    assert.equal(env.cpu.gpr[RAX], 0xf0f0_f0f0n);
    assert.equal(status(env.cpu), 'ZF');
  });
});

describe('model isa: shifts and rotates (APM SAL/SHL, SHR, SAR, ROL, ROR, RCL, RCR)', () => {
  it('shl by 1: CF = the bit shifted out, OF = MSB(result) xor CF', () => {
    let env = exec('d1 e0', { [RAX]: 0x8000_0000n }); // shl eax, 1
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu, ['CF', 'ZF', 'SF', 'OF', 'PF']), 'CF PF ZF OF');
    env = exec('d1 e0', { [RAX]: 0x4000_0000n });
    assert.equal(env.cpu.gpr[RAX], 0x8000_0000n);
    assert.equal(status(env.cpu, ['CF', 'ZF', 'SF', 'OF']), 'SF OF');
    env = exec('d1 e0', { [RAX]: 0xc000_0000n }); // MSB 1, CF 1 → OF 0
    assert.equal(status(env.cpu, ['CF', 'OF']), 'CF');
  });

  it('shr and sar by 1: OF = old MSB for SHR, 0 for SAR', () => {
    let env = exec('d1 e8', { [RAX]: 0x8000_0001n }); // shr eax, 1
    assert.equal(env.cpu.gpr[RAX], 0x4000_0000n);
    assert.equal(status(env.cpu, ['CF', 'SF', 'OF']), 'CF OF');
    env = exec('d1 f8', { [RAX]: 0x8000_0001n }); // sar eax, 1
    assert.equal(env.cpu.gpr[RAX], 0xc000_0000n);
    assert.equal(status(env.cpu, ['CF', 'SF', 'OF']), 'CF SF');
  });

  it('shifts by n: CF = last bit out', () => {
    let env = exec('c1 e0 04', { [RAX]: 0x1000_0001n }); // shl eax, 4: bit 28 goes out last
    assert.equal(env.cpu.gpr[RAX], 0x10n);
    assert.equal(status(env.cpu, ['CF', 'ZF', 'SF']), 'CF');
    env = exec('c1 e8 04', { [RAX]: 0x18n }); // shr eax, 4: bit 3 out last
    assert.equal(env.cpu.gpr[RAX], 1n);
    assert.equal(status(env.cpu, ['CF', 'ZF']), 'CF');
    env = exec('c1 f8 1f', { [RAX]: 0x8000_0000n }); // sar eax, 31: bit 30 (0) out last
    assert.equal(env.cpu.gpr[RAX], 0xffff_ffffn);
    assert.equal(status(env.cpu, ['CF', 'SF']), 'SF');
    env = exec('48 c1 e0 3f', { [RAX]: 3n }); // shl rax, 63
    assert.equal(env.cpu.gpr[RAX], 1n << 63n);
    assert.equal(status(env.cpu, ['CF', 'SF']), 'CF SF'); // bit 1 out last
  });

  it('count 0 changes no flag; counts are masked to 5 bits (6 with REX.W)', () => {
    const flags = 0x2 | F.CF | F.ZF | F.OF;
    let env = exec('c1 e0 00', { [RAX]: 0x8000_0001n }, flags); // shl eax, 0
    assert.equal(env.cpu.gpr[RAX]! & 0xffff_ffffn, 0x8000_0001n);
    assert.equal(status(env.cpu), 'CF ZF OF');
    env = exec('d3 e0', { [RAX]: 0x8000_0001n, [RCX]: 32n }, flags); // shl eax, cl with CL = 32 → 0
    assert.equal(env.cpu.gpr[RAX]! & 0xffff_ffffn, 0x8000_0001n);
    assert.equal(status(env.cpu), 'CF ZF OF');
    env = exec('d3 e0', { [RAX]: 1n, [RCX]: 33n }); // CL = 33 → 1
    assert.equal(env.cpu.gpr[RAX], 2n);
    env = exec('48 d3 e0', { [RAX]: 1n, [RCX]: 33n }); // 64-bit: 33 stays 33
    assert.equal(env.cpu.gpr[RAX], 1n << 33n);
    env = exec('48 d3 e0', { [RAX]: 1n, [RCX]: 0x41n }); // 64-bit: 0x41 → 1
    assert.equal(env.cpu.gpr[RAX], 2n);
    env = exec('c0 e0 09', { [RAX]: 0xffn }); // shl al, 9: count 9 > 8 is not masked away
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu, ['CF', 'ZF']), 'ZF'); // flags.ts rule: CF = 0 past the operand
  });

  it('rotates: CF and OF only', () => {
    const zf = 0x2 | F.ZF | F.SF;
    let env = exec('d1 c0', { [RAX]: 0x8000_0001n }, zf); // rol eax, 1
    assert.equal(env.cpu.gpr[RAX], 3n);
    assert.equal(status(env.cpu), 'CF ZF SF OF'); // CF = 1 (bit rotated into bit 0), OF = 0 ^ 1
    env = exec('d1 c8', { [RAX]: 1n }); // ror eax, 1
    assert.equal(env.cpu.gpr[RAX], 0x8000_0000n);
    assert.equal(status(env.cpu), 'CF OF'); // CF = MSB = 1; OF = MSB xor bit 30 = 1
    env = exec('d1 d0', { [RAX]: 0x8000_0000n }, 0x2 | F.CF); // rcl eax, 1 with CF = 1
    assert.equal(env.cpu.gpr[RAX], 1n);
    assert.equal(status(env.cpu), 'CF OF'); // CF ← old MSB 1; OF = MSB(0) xor CF(1)
    env = exec('d1 d8', { [RAX]: 1n }, 0x2); // rcr eax, 1 with CF = 0
    assert.equal(env.cpu.gpr[RAX], 0n);
    assert.equal(status(env.cpu), 'CF'); // CF ← old bit 0; OF = old MSB xor old CF = 0
    env = exec('c1 c0 08', { [RAX]: 0x1234_5678n }); // rol eax, 8
    assert.equal(env.cpu.gpr[RAX], 0x3456_7812n);
    assert.equal(status(env.cpu, ['CF']), ''); // CF = bit 0 of the result
  });

  it('8-bit rotates: ROL by 8 keeps the byte, RCL by 9 is the identity', () => {
    let env = exec('c0 c0 08', { [RAX]: 0x81n }); // rol al, 8
    assert.equal(env.cpu.gpr[RAX], 0x81n);
    assert.equal(status(env.cpu, ['CF']), 'CF'); // CF = bit 0 of the result
    env = exec('c0 d0 09', { [RAX]: 0x81n }, 0x2 | F.CF); // rcl al, 9: 9 mod 9 = 0 rotations
    assert.equal(env.cpu.gpr[RAX], 0x81n);
    assert.equal(status(env.cpu, ['CF']), 'CF');
    // rcl al, 2 with CF:AL = 0:1000_0001 — step 1: CF = 1, AL = 0000_0010 (old CF into bit 0);
    // step 2: CF = 0, AL = 0000_0101
    env = exec('c0 d0 02', { [RAX]: 0x81n }, 0x2);
    assert.equal(env.cpu.gpr[RAX], 0x05n);
    assert.equal(status(env.cpu, ['CF']), '');
  });
});

describe('model isa: BT, BTS, BTR, BTC (APM BT …)', () => {
  it('register operands: offset modulo the width, CF = the bit', () => {
    let env = exec('0f a3 c8', { [RAX]: 2n, [RCX]: 33n }); // bt eax, ecx → bit 1
    assert.equal(status(env.cpu, ['CF']), 'CF');
    env = exec('0f ba e0 05', { [RAX]: 0x20n }); // bt eax, 5
    assert.equal(status(env.cpu, ['CF']), 'CF');
    env = exec('48 0f ab c8', { [RAX]: 0n, [RCX]: 63n }); // bts rax, rcx
    assert.equal(env.cpu.gpr[RAX], 1n << 63n);
    assert.equal(status(env.cpu, ['CF']), '');
    env = exec('0f b3 c8', { [RAX]: 0xffn, [RCX]: 3n }, 0x2 | F.ZF); // btr eax, ecx
    assert.equal(env.cpu.gpr[RAX], 0xf7n);
    assert.equal(status(env.cpu, ['CF', 'ZF']), 'CF ZF'); // ZF unaffected
    env = exec('0f bb c8', { [RAX]: 0n, [RCX]: 4n }); // btc eax, ecx
    assert.equal(env.cpu.gpr[RAX], 0x10n);
  });

  it('memory with a register offset addresses a bit string, also below the operand', () => {
    const env = cpu64();
    env.cpu.gpr[RAX] = BigInt(DATA + 0x10);
    env.cpu.gpr[RCX] = 35n; // dword at +4, bit 3
    run(env, '0f ab 08'); // bts [rax], ecx
    assert.equal(env.mem.read32(DATA + 0x14), 0x8);
    assert.equal(env.mem.read32(DATA + 0x10), 0);
    env.cpu.gpr[RCX] = 0xffff_ffffn; // −1: dword at −4, bit 31
    run(env, '0f ab 08');
    assert.equal(env.mem.read32(DATA + 0x0c), 0x8000_0000);
    env.cpu.gpr[RCX] = 64n + 5n; // 64-bit: qword at +8, bit 5
    run(env, '48 0f ab 08');
    assert.equal(env.mem.read64(DATA + 0x18), 0x20n);
    run(env, '48 0f a3 08'); // bt [rax], rcx: the bit just set
    assert.equal(status(env.cpu, ['CF']), 'CF');
  });

  it('memory with an immediate offset stays inside the operand', () => {
    const env = cpu64();
    env.cpu.gpr[RAX] = BigInt(DATA);
    run(env, '0f ba 28 23'); // bts dword [rax], 35 → bit 3
    assert.equal(env.mem.read32(DATA), 0x8);
    assert.equal(env.mem.read32(DATA + 4), 0);
  });
});

describe('model isa: SETcc, flag instructions, LAHF/SAHF', () => {
  it('setcc writes 0 or 1 to a byte', () => {
    assert.equal(exec('0f 94 c0', { [RAX]: 0xff00n }, 0x2 | F.ZF).cpu.gpr[RAX], 0xff01n); // sete al
    assert.equal(exec('0f 94 c0', { [RAX]: 0xffffn }, 0x2).cpu.gpr[RAX], 0xff00n);
    assert.equal(exec('0f 9c c4', { [RAX]: 0n }, 0x2 | F.OF).cpu.gpr[RAX], 0x100n); // setl ah: SF ≠ OF
  });

  it('clc, stc, cmc, cld, std', () => {
    assert.equal(exec('f9').cpu.rflags, 0x2 | F.CF);
    assert.equal(exec('f8', {}, 0x2 | F.CF | F.ZF).cpu.rflags, 0x2 | F.ZF);
    assert.equal(exec('f5', {}, 0x2 | F.CF).cpu.rflags, 0x2);
    assert.equal(exec('f5', {}, 0x2).cpu.rflags, 0x2 | F.CF);
    assert.equal(exec('fd').cpu.rflags, 0x2 | F.DF);
    assert.equal(exec('fc', {}, 0x2 | F.DF).cpu.rflags, 0x2);
  });

  it('lahf: AH = SF:ZF:0:AF:0:PF:1:CF; sahf loads those five, OF untouched', () => {
    const env = exec('9f', { [RAX]: 0n }, 0x2 | F.SF | F.CF | F.OF);
    assert.equal(env.cpu.gpr[RAX], 0x8300n); // bits 7, 1, 0
    const s = exec('9e', { [RAX]: 0xff00n }, 0x2 | F.OF);
    assert.equal(s.cpu.rflags, 0x2 | F.OF | F.SF | F.ZF | F.AF | F.PF | F.CF);
  });
});

// ---- control transfer -------------------------------------------------------------------------------

describe('model isa: JMP, Jcc (APM JMP (Near), Jcc)', () => {
  it('rel8, rel32, register and memory indirect', () => {
    assert.equal(exec('eb 05').cpu.rip, 0x1007n); // next 0x1002 + 5
    assert.equal(exec('eb fe').cpu.rip, 0x1000n);
    assert.equal(exec('e9 00 01 00 00').cpu.rip, 0x1105n);
    assert.equal(exec('e9 00 f0 ff ff').cpu.rip, 0x1005n - 0x1000n);
    assert.equal(exec('ff e0', { [RAX]: 0x7fff_ffff_f000n }).cpu.rip, 0x7fff_ffff_f000n); // jmp rax
    const env = cpu64();
    env.mem.write64(DATA, 0x4000n);
    env.cpu.gpr[RBX] = BigInt(DATA);
    run(env, 'ff 23'); // jmp [rbx]
    assert.equal(env.cpu.rip, 0x4000n);
  });

  it('a non-canonical target is #GP(0) at the jump', () => {
    const env = cpu64();
    env.cpu.gpr[RAX] = 0x0000_8000_0000_0000n;
    expectFault(env, 'ff e0', 13, 0);
  });

  it('66h: 16-bit operand size truncates the target to 16 bits (AMD)', () => {
    const env = cpu64();
    env.cpu.rip = 0x12340n;
    run(env, '66 eb 00'); // next = 0x12343 → IP = 0x2343
    assert.equal(env.cpu.rip, 0x2343n);
  });

  it('all sixteen conditions (APM Jcc table)', () => {
    const names = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];
    // flags → the conditions that hold, written out from the table's definitions
    const cases: Array<[number, string]> = [
      [0, 'no ae ne a ns np ge g'],
      [F.CF, 'no b ne be ns np ge g'],
      [F.ZF, 'no ae e be ns np ge le'],
      [F.SF, 'no ae ne a s np l le'],
      [F.OF, 'o ae ne a ns np l le'],
      [F.PF, 'no ae ne a ns p ge g'],
      [F.SF | F.OF, 'o ae ne a s np ge g'],
      [F.CF | F.ZF, 'no b e be ns np ge le'],
    ];
    for (const [flags, taken] of cases) {
      names.forEach((n, cc) => {
        const short = exec(`${(0x70 + cc).toString(16)} 10`, {}, 0x2 | flags);
        const near = exec(`0f ${(0x80 + cc).toString(16)} 00 01 00 00`, {}, 0x2 | flags);
        const want = taken.split(' ').includes(n);
        assert.equal(short.cpu.rip, want ? 0x1012n : 0x1002n, `j${n} rel8 with flags ${flags.toString(16)}`);
        assert.equal(near.cpu.rip, want ? 0x1106n : 0x1006n, `j${n} rel32 with flags ${flags.toString(16)}`);
      });
    }
  });
});

describe('model isa: CALL, RET (APM CALL (Near), RET (Near))', () => {
  it('call rel32 pushes the next RIP; ret pops it', () => {
    const env = cpu64();
    env.mem.load(0x1015, bytes('c3'));
    run(env, 'e8 10 00 00 00');
    assert.equal(env.cpu.rip, 0x1015n);
    assert.equal(env.cpu.gpr[RSP], STACK - 8n);
    assert.equal(env.mem.read64(Number(STACK) - 8), 0x1005n);
    step(env.cpu);
    assert.equal(env.cpu.rip, 0x1005n);
    assert.equal(env.cpu.gpr[RSP], STACK);
  });

  it('ret imm16 releases the bytes after the return address', () => {
    const env = cpu64();
    env.mem.write64(Number(STACK), 0x2000n);
    run(env, 'c2 10 00');
    assert.equal(env.cpu.rip, 0x2000n);
    assert.equal(env.cpu.gpr[RSP], STACK + 8n + 0x10n);
  });

  it('call indirect through a register and memory', () => {
    let env = exec('ff d0', { [RAX]: 0x5000n }); // call rax
    assert.equal(env.cpu.rip, 0x5000n);
    assert.equal(env.mem.read64(Number(STACK) - 8), 0x1002n);
    env = cpu64();
    env.mem.write64(DATA, 0x6000n);
    env.cpu.gpr[RAX] = BigInt(DATA);
    run(env, 'ff 50 00'); // call [rax+0]
    assert.equal(env.cpu.rip, 0x6000n);
    assert.equal(env.mem.read64(Number(STACK) - 8), 0x1003n);
  });

  it('16-bit operand size: 2-byte push and pop', () => {
    const env = cpu64();
    run(env, '66 e8 10 00'); // call rel16: next 0x1004, target 0x1014
    assert.equal(env.cpu.rip, 0x1014n);
    assert.equal(env.cpu.gpr[RSP], STACK - 2n);
    assert.equal(env.mem.read16(Number(STACK) - 2), 0x1004);
    run(env, '66 c3'); // retw
    assert.equal(env.cpu.rip, 0x1004n);
    assert.equal(env.cpu.gpr[RSP], STACK);
  });

  it('ret to a non-canonical address is #GP(0) with RSP unchanged', () => {
    const env = cpu64();
    env.mem.write64(Number(STACK), 0x8000_0000_0000_0000n);
    expectFault(env, 'c3', 13, 0);
    assert.equal(env.cpu.gpr[RSP], STACK);
  });

  it('call to a non-canonical target pushes nothing', () => {
    const env = cpu64();
    env.cpu.gpr[RAX] = 0x0001_0000_0000_0000n;
    expectFault(env, 'ff d0', 13, 0);
    assert.equal(env.cpu.gpr[RSP], STACK);
  });

  it('32-bit mode: 4-byte return address, a target beyond the CS limit is #GP(0)', () => {
    const env = cpu64(32);
    run(env, 'e8 00 01 00 00');
    assert.equal(env.cpu.rip, 0x1105n);
    assert.equal(env.mem.read32(Number(STACK) - 4), 0x1005);
    const lim = cpu64(32);
    lim.cpu.seg[SEG.CS]!.limit = 0xffff;
    lim.cpu.gpr[RAX] = 0x10000n;
    expectFault(lim, 'ff e0', 13, 0); // jmp eax past the limit
  });
});

describe('model isa: LOOP, LOOPE, LOOPNE, JrCXZ (APM LOOPcc, JrCXZ)', () => {
  it('loop decrements rCX and branches while it is not 0', () => {
    const env = cpu64();
    env.cpu.gpr[RCX] = 3n;
    run(env, 'e2 fe'); // loop $
    assert.equal(env.cpu.gpr[RCX], 2n);
    assert.equal(env.cpu.rip, 0x1000n);
    step(env.cpu);
    step(env.cpu);
    assert.equal(env.cpu.gpr[RCX], 0n);
    assert.equal(env.cpu.rip, 0x1002n);
  });

  it('the address size picks the counter: 67h uses ECX', () => {
    let env = exec('67 e2 fe', { [RCX]: 0x1_0000_0001n }); // ECX 1 → 0: falls through
    assert.equal(env.cpu.gpr[RCX], 0n);
    assert.equal(env.cpu.rip, 0x1003n);
    env = exec('e2 fe', { [RCX]: 0x1_0000_0001n }); // RCX → 0x1_0000_0000: taken
    assert.equal(env.cpu.gpr[RCX], 0x1_0000_0000n);
    assert.equal(env.cpu.rip, 0x1000n);
  });

  it('loope/loopne also test ZF; loop does not change flags', () => {
    assert.equal(exec('e1 10', { [RCX]: 5n }, 0x2 | F.ZF).cpu.rip, 0x1012n); // loope, ZF = 1
    assert.equal(exec('e1 10', { [RCX]: 5n }, 0x2).cpu.rip, 0x1002n);
    assert.equal(exec('e0 10', { [RCX]: 5n }, 0x2).cpu.rip, 0x1012n); // loopne, ZF = 0
    const env = exec('e0 10', { [RCX]: 1n }, 0x2); // count reaches 0: not taken
    assert.equal(env.cpu.rip, 0x1002n);
    assert.equal(env.cpu.rflags, 0x2);
  });

  it('jrcxz / jecxz branch on a zero counter without changing it', () => {
    assert.equal(exec('e3 10', { [RCX]: 0n }).cpu.rip, 0x1012n);
    assert.equal(exec('e3 10', { [RCX]: 0x1_0000_0000n }).cpu.rip, 0x1002n);
    const env = exec('67 e3 10', { [RCX]: 0x1_0000_0000n }); // jecxz
    assert.equal(env.cpu.rip, 0x1013n);
    assert.equal(env.cpu.gpr[RCX], 0x1_0000_0000n);
  });
});

// ---- strings --------------------------------------------------------------------------------------

describe('model isa: string instructions (APM STOS, LODS, MOVS, CMPS, SCAS; vol. 3 1.2.6)', () => {
  it('rep stosb forward (DF = 0)', () => {
    const env = cpu64();
    env.mem.fill(DATA, 8, 0x11);
    Object.assign(env.cpu.gpr, { [RDI]: BigInt(DATA), [RCX]: 4n, [RAX]: 0xabn });
    run(env, 'f3 aa');
    assert.deepEqual([...env.mem.bytes.subarray(DATA, DATA + 5)], [0xab, 0xab, 0xab, 0xab, 0x11]);
    assert.equal(env.cpu.gpr[RDI], BigInt(DATA + 4));
    assert.equal(env.cpu.gpr[RCX], 0n);
    assert.equal(env.cpu.rip, 0x1002n);
  });

  it('rep stosb backward (DF = 1)', () => {
    const env = cpu64();
    env.mem.fill(DATA, 8, 0x11);
    Object.assign(env.cpu.gpr, { [RDI]: BigInt(DATA + 3), [RCX]: 4n, [RAX]: 0xabn });
    env.cpu.rflags = 0x2 | F.DF;
    run(env, 'f3 aa');
    assert.deepEqual([...env.mem.bytes.subarray(DATA - 1, DATA + 5)], [0, 0xab, 0xab, 0xab, 0xab, 0x11]);
    assert.equal(env.cpu.gpr[RDI], BigInt(DATA - 1));
    assert.equal(env.cpu.gpr[RCX], 0n);
  });

  it('stosq and single stosb/lodsb move rDI/rSI by the element size, either way', () => {
    let env = exec('48 ab', { [RDI]: BigInt(DATA), [RAX]: 0x0102_0304_0506_0708n });
    assert.equal(env.mem.read64(DATA), 0x0102_0304_0506_0708n);
    assert.equal(env.cpu.gpr[RDI], BigInt(DATA + 8));
    env = cpu64();
    env.mem.load(DATA, bytes('10 20 30'));
    env.cpu.gpr[RSI] = BigInt(DATA + 2);
    env.cpu.rflags = 0x2 | F.DF;
    run(env, 'ac'); // lodsb
    assert.equal(env.cpu.gpr[RAX], 0x30n);
    assert.equal(env.cpu.gpr[RSI], BigInt(DATA + 1));
    env.cpu.rflags = 0x2;
    run(env, 'ac');
    assert.equal(env.cpu.gpr[RAX], 0x20n);
    assert.equal(env.cpu.gpr[RSI], BigInt(DATA + 2));
  });

  it('rep lodsb leaves the last element in AL', () => {
    const env = cpu64();
    env.mem.load(DATA, bytes('01 02 03'));
    Object.assign(env.cpu.gpr, { [RSI]: BigInt(DATA), [RCX]: 3n });
    run(env, 'f3 ac');
    assert.equal(env.cpu.gpr[RAX], 3n);
    assert.equal(env.cpu.gpr[RSI], BigInt(DATA + 3));
    assert.equal(env.cpu.gpr[RCX], 0n);
  });

  it('rep movsb copies; rCX = 0 does nothing', () => {
    const env = cpu64();
    env.mem.load(DATA, bytes('de ad be ef'));
    Object.assign(env.cpu.gpr, { [RSI]: BigInt(DATA), [RDI]: BigInt(DATA + 0x100), [RCX]: 4n });
    run(env, 'f3 a4');
    assert.equal(env.mem.read32(DATA + 0x100), 0xefbeadde);
    assert.equal(env.cpu.gpr[RSI], BigInt(DATA + 4));
    assert.equal(env.cpu.gpr[RDI], BigInt(DATA + 0x104));
    const zero = exec('f3 a4', { [RSI]: BigInt(DATA), [RDI]: BigInt(DATA + 0x200), [RCX]: 0n });
    assert.equal(zero.cpu.gpr[RDI], BigInt(DATA + 0x200));
    assert.equal(zero.mem.read8(DATA + 0x200), 0);
  });

  it('repe cmpsb stops after the first difference, repne scasb after the first match', () => {
    const env = cpu64();
    env.mem.load(DATA, bytes('61 62 63 64'));
    env.mem.load(DATA + 0x10, bytes('61 62 78 64'));
    Object.assign(env.cpu.gpr, { [RSI]: BigInt(DATA), [RDI]: BigInt(DATA + 0x10), [RCX]: 4n });
    run(env, 'f3 a6'); // compares 3 elements: 'c' − 'x' differs
    assert.equal(env.cpu.gpr[RCX], 1n);
    assert.equal(env.cpu.gpr[RSI], BigInt(DATA + 3));
    assert.equal(env.cpu.gpr[RDI], BigInt(DATA + 0x13));
    assert.equal(status(env.cpu, ['ZF', 'CF']), 'CF'); // 0x63 < 0x78

    const s = cpu64();
    s.mem.load(DATA, bytes('00 00 2f 00'));
    Object.assign(s.cpu.gpr, { [RDI]: BigInt(DATA), [RCX]: 10n, [RAX]: 0x2fn });
    run(s, 'f2 ae');
    assert.equal(s.cpu.gpr[RDI], BigInt(DATA + 3)); // past the match
    assert.equal(s.cpu.gpr[RCX], 7n);
    assert.equal(status(s.cpu, ['ZF']), 'ZF');
  });

  it('67h: 32-bit address size uses EDI/ECX and zero-extends them', () => {
    const env = cpu64();
    Object.assign(env.cpu.gpr, { [RDI]: 0xffff_0000_0000_0000n + BigInt(DATA), [RCX]: 0x1_0000_0002n, [RAX]: 0x77n });
    run(env, '67 f3 aa');
    assert.equal(env.mem.read16(DATA), 0x7777);
    assert.equal(env.cpu.gpr[RDI], BigInt(DATA + 2));
    assert.equal(env.cpu.gpr[RCX], 0n);
  });

  it('a fault part-way leaves rCX/rDI after the completed iterations and RIP at the instruction', () => {
    const env = cpu64();
    env.readOnlyPages.add(5); // 0x5000–0x5fff
    Object.assign(env.cpu.gpr, { [RDI]: 0x4ffen, [RCX]: 4n, [RAX]: 0x99n });
    expectFault(env, 'f3 aa', 14, 0x3);
    assert.equal(env.mem.read8(0x4ffe), 0x99);
    assert.equal(env.mem.read8(0x4fff), 0x99);
    assert.equal(env.cpu.gpr[RDI], 0x5000n);
    assert.equal(env.cpu.gpr[RCX], 2n);
    // the handler makes the page writable and IRETs to the instruction: the rest completes
    env.readOnlyPages.clear();
    step(env.cpu);
    assert.equal(env.mem.read16(0x5000), 0x9999);
    assert.equal(env.cpu.gpr[RDI], 0x5002n);
    assert.equal(env.cpu.gpr[RCX], 0n);
    assert.equal(env.cpu.rip, 0x1002n);
  });

  it('a fault on the first element changes no register (movsq)', () => {
    const env = cpu64();
    env.readOnlyPages.add(5);
    Object.assign(env.cpu.gpr, { [RSI]: BigInt(DATA), [RDI]: 0x5000n, [RCX]: 0x1_0000_0003n });
    expectFault(env, '67 f3 48 a5', 14, 0x3);
    assert.equal(env.cpu.gpr[RCX], 0x1_0000_0003n);
    assert.equal(env.cpu.gpr[RSI], BigInt(DATA));
    assert.equal(env.cpu.gpr[RDI], 0x5000n);
  });
});

