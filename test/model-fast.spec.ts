// The fast forms (model/isa/fast.ts) against the general handlers they stand in for: each
// instruction below runs on two CPUs in the same state, one through cpu.fetch() (which picks the
// fast form) and one through the group's own handler, over edge and random register values and
// flags; registers, RFLAGS, the next RIP and any fault must be identical.

import assert from 'node:assert/strict';
import { ACC, Cpu, type CpuHooks } from '../model/cpu/cpu.ts';
import { Fault } from '../model/cpu/fault.ts';
import { SEG } from '../model/cpu/state.ts';
import { setCodeMode } from './support/cpu-mode.ts';
import { PhysicalMemory } from '../model/memory.ts';
import { handlerFor } from '../model/isa/index.ts';
import { generalHandlerFor } from '../model/isa/registry.ts';

const CODE = 0x1000n;

function makeCpu(bits: 32 | 64, limit = 0xffff_ffff): Cpu {
  const hooks: CpuHooks = { translate: (_c, linear, _a: number) => Number(linear), handlerFor, portIn: () => 0, portOut: () => {} };
  void ACC;
  const cpu = new Cpu(new PhysicalMemory(1 << 16), hooks);
  setCodeMode(cpu, bits);
  if (bits === 32) cpu.seg[SEG.CS]!.limit = limit;
  cpu.rip = CODE;
  return cpu;
}

// a small deterministic generator (xorshift), so a failure reproduces
let seed = 0x2545f491;
function rand32(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}
const EDGES = [0n, 1n, 2n, 3n, 0x7fn, 0x80n, 0xffn, 0x7fff_ffffn, 0x8000_0000n, 0xffff_fffen, 0xffff_ffffn, 0x1_0000_0000n, 0x1_ffff_ffffn,
  0x7fff_ffff_ffff_ffffn, 0x8000_0000_0000_0000n, 0xffff_ffff_0000_0000n, 0xffff_ffff_ffff_fffen, 0xffff_ffff_ffff_ffffn];
function value(i: number): bigint {
  if (i < EDGES.length * 2) return EDGES[(i * 7 + (i >> 3)) % EDGES.length]!;
  return (BigInt(rand32()) << 32n) | BigInt(rand32() & (i & 1 ? 0xffff_ffff : 0xff));
}

/** hex → both CPUs, `rounds` states; returns how many runs used a fast form (to know the test bites). */
function compare(hex: string, bits: 32 | 64 = 64, rounds = 300, limit?: number): void {
  const code = Buffer.from(hex.replace(/\s+/g, ''), 'hex');
  let fast = 0;
  for (let n = 0; n < rounds; n++) {
    const regs = Array.from({ length: 16 }, (_, r) => value(n * 16 + r));
    const rflags = 0x2 | (rand32() & 0x8d5) | (n & 4 ? 0x200 : 0);
    const run = (which: 'fast' | 'general') => {
      const cpu = makeCpu(bits, limit);
      cpu.mem.load(Number(CODE), code);
      regs.forEach((v, r) => { cpu.gpr[r] = v; });
      cpu.rflags = rflags;
      const insn = cpu.fetch();
      cpu.nextRip = insn.next;
      const h = which === 'fast' ? insn.exec : generalHandlerFor(insn);
      if (which === 'fast' && h !== generalHandlerFor(insn)) fast++;
      let fault: string | undefined;
      try {
        h(cpu, insn);
      } catch (e) {
        if (!(e instanceof Fault)) throw e;
        fault = `vector ${e.vector} error ${e.errorCode}`;
      }
      return { gpr: [...cpu.gpr].map((v) => v.toString(16)), rflags: cpu.rflags.toString(16), nextRip: cpu.nextRip.toString(16), fault };
    };
    const g = run('general');
    const f = run('fast');
    assert.deepEqual(f, g, `${hex} (${bits}-bit) with registers ${regs.map((v) => v.toString(16)).join(' ')} rflags ${rflags.toString(16)}`);
  }
  assert.ok(fast > 0, `${hex}: no fast form was used`);
}

describe('model fast forms = general handlers', () => {
  const cases64: Record<string, string> = {
    'add r64, r64': '48 01 d0', 'add r32, r32': '01 d0', 'add r64, imm8': '48 83 c0 7f', 'add r32, imm32': '05 ff ff ff 7f',
    'sub r64, r64': '48 29 d0', 'sub r32, r32': '29 d0', 'sub r64, imm8': '48 83 e8 03', 'sub r64, imm32': '48 2d 00 00 00 80',
    'cmp r64, r64': '48 39 d0', 'cmp r32, r32': '39 d0', 'cmp r64, imm32': '48 81 f9 00 00 00 80', 'cmp r32, imm32': '81 f9 ff ff ff ff',
    'and r64, r64': '48 21 d0', 'and r32, imm32': '25 ff ff ff 00', 'and r64, imm32': '48 25 ff ff ff 00',
    'or r64, imm8': '48 83 ca 01', 'or r32, r32': '09 d0', 'or eax, imm32': '0d 00 00 00 80',
    'xor r64, imm8': '48 83 f0 55', 'xor r32, r32': '31 c0', 'xor r64, r64': '48 31 d0', 'xor eax, imm32': '35 55 aa 55 aa',
    'test r64, r64': '48 85 d0', 'test r32, r32': '85 d0', 'test r64, imm32': '48 a9 00 00 00 80',
    'inc r64': '48 ff c2', 'inc r32': 'ff c2', 'dec r64': '48 ff c8', 'dec r32': 'ff c8', 'inc r9': '49 ff c1',
    'mov r64, r64': '48 89 d0', 'mov r32, r32': '89 d0', 'mov r32, imm32': 'b8 78 56 34 f2', 'mov r64, imm64': '48 b8 88 77 66 55 44 33 22 f1',
    'mov r64, simm32': '48 c7 c0 00 00 00 80', 'mov r15, r8': '4d 89 c7',
    'lea r64, [base+disp]': '48 8d 40 08', 'lea r64, [base+index*4+disp]': '48 8d 44 90 f8', 'lea r64, [base+index*8]': '4a 8d 04 c1',
    'shr r32, 1': 'd1 e8', 'shl r64, 1': '48 d1 e0', 'shr r64, 1': '48 d1 e8', 'shl r32, 1': 'd1 e0',
    'loop rel8 (RCX)': 'e2 fe', 'loop rel8 (ECX)': '67 e2 fe', 'loop to a later target': 'e2 10',
    'je': '74 05', 'jne': '75 05', 'jb': '72 05', 'jae': '73 05', 'jbe': '76 05', 'ja': '77 05', 'js': '78 05', 'jns': '79 05',
    'jp': '7a 05', 'jnp': '7b 05', 'jl': '7c 05', 'jge': '7d 05', 'jle': '7e 05', 'jg': '7f 05', 'jo': '70 05', 'jno': '71 fe',
    'jge rel32': '0f 8d 00 01 00 00',
  };
  for (const count of [0, 1, 2, 5, 31, 32, 33, 63, 64, 0xff]) {
    const c = count.toString(16).padStart(2, '0');
    cases64[`shl r64, ${count}`] = `48 c1 e0 ${c}`;
    cases64[`shr r64, ${count}`] = `48 c1 e8 ${c}`;
    cases64[`shl r32, ${count}`] = `c1 e0 ${c}`;
    cases64[`shr r32, ${count}`] = `c1 e8 ${c}`;
    cases64[`sal r64, ${count}`] = `48 c1 f0 ${c}`;
  }
  for (const [name, hex] of Object.entries(cases64)) it(`64-bit ${name}`, () => compare(hex));

  it('32-bit forms', () => {
    for (const hex of ['01 d0', '29 d0', '83 f8 05', '40', '48', '89 d0', 'c1 e0 04', 'd1 e8', '0d 01 00 00 00']) compare(hex, 32);
  });
  it('32-bit jcc and loop: within the CS limit and beyond it (#GP from the general handler)', () => {
    for (const hex of ['74 05', '75 05', '7c 05', 'e2 fe', 'e2 40', '0f 84 00 10 00 00']) {
      compare(hex, 32);
      compare(hex, 32, 100, 0x1010);
    }
  });
});
