// System instructions of the model (model/isa/system.ts, control-regs.ts, segment-regs.ts, msr.ts) and the selector loads behind them
// (model/segmentation.ts), executed from hand-encoded machine code. Expected values come from the
// AMD64 APM (pub. 24593 vol. 2, 24594 vol. 3); each case names the section.

import assert from 'node:assert/strict';
import { Cpu, EFER_LMA, EFER_LME, EFER_NXE } from '../model/cpu/cpu.ts';
import { Fault } from '../model/cpu/fault.ts';
import { ATTR, GPR, SEG } from '../model/cpu/state.ts';
import { PhysicalMemory } from '../model/memory.ts';
import { translate } from '../model/paging.ts';
import '../model/isa/control-regs.ts';
import '../model/isa/segment-regs.ts';
import '../model/isa/msr.ts';
import '../model/isa/system.ts';
import { handlerFor } from '../model/isa/registry.ts';
import { checkCodeForJump, checkCodeForReturn, loadCodeSegment, readDescriptor } from '../model/segmentation.ts';
import { movControl, readCr } from '../model/isa/control-regs.ts';
import { readMsr } from '../model/isa/msr.ts';
import { DEFAULT_PROFILE } from '../model/profile.ts';

const CODE = 0x10000;
const GDT = 0x5000;
const STACK_TOP = 0x9000n;
const PML4 = 0x1000, PDPT = 0x2000, PD = 0x3000;

// descriptors as the runtime's GDT has them (templates/partials/boot.S.hbs)
const GDT_ENTRIES = [
  0n,
  0x00af9a000000ffffn, // 0x08 64-bit code, DPL 0
  0x00cf92000000ffffn, // 0x10 data, DPL 0
  0x00cf9a000000ffffn, // 0x18 32-bit code, DPL 0
  0x00cffa000000ffffn, // 0x20 32-bit code, DPL 3
  0x00cff2000000ffffn, // 0x28 data, DPL 3
  0x00affa000000ffffn, // 0x30 64-bit code, DPL 3
  0x0000890060000067n, 0n, // 0x38 64-bit available TSS at 0x6000, limit 0x67 (16 bytes)
  0x00cf12000000ffffn, // 0x48 data, DPL 0, not present
  0x00cf98000000ffffn, // 0x50 execute-only code
];

const ports: Array<[number, number, number]> = [];

function newCpu(): Cpu {
  const mem = new PhysicalMemory(8 << 20);
  const cpu = new Cpu(mem, {
    translate,
    handlerFor,
    portIn: (port, size) => (port === 0x60 ? 0x1234_5678 : 0xffff_ffff) & (size === 4 ? 0xffff_ffff : (1 << (size * 8)) - 1),
    portOut: (port, size, value) => { ports.push([port, size, value]); },
  });
  GDT_ENTRIES.forEach((d, i) => mem.write64(GDT + 8 * i, d));
  cpu.gdtr = { base: BigInt(GDT), limit: GDT_ENTRIES.length * 8 - 1 };
  return cpu;
}

/** 64-bit mode at CPL 0: 0..4 MiB identity-mapped with user-accessible 2 MiB pages. */
function cpu64(): Cpu {
  const cpu = newCpu();
  const m = cpu.mem;
  m.write64(PML4, BigInt(PDPT) | 7n);
  m.write64(PDPT, BigInt(PD) | 7n);
  m.write64(PD, 0x87n);
  m.write64(PD + 8, 0x20_0000n | 0x87n);
  cpu.cr0 = 0x8001_0031n; // PG WP NE ET PE
  cpu.cr4 = 0x20n;
  cpu.cr3 = BigInt(PML4);
  cpu.efer = EFER_LME | EFER_LMA | EFER_NXE;
  Object.assign(cpu.seg[SEG.CS]!, { selector: 0x08, base: 0n, limit: 0xffff_ffff, attrib: ATTR.P | ATTR.S | 0xb | ATTR.L | ATTR.G });
  for (const i of [SEG.DS, SEG.ES, SEG.SS]) Object.assign(cpu.seg[i]!, { selector: 0x10, attrib: ATTR.P | ATTR.S | 0x3 | ATTR.DB | ATTR.G });
  cpu.gpr[GPR.RSP] = STACK_TOP;
  return cpu;
}

/** 32-bit protected mode, paging off, CPL 0 (the multiboot entry state). */
function cpu32(): Cpu {
  const cpu = newCpu();
  cpu.cr0 = 0x11n;
  Object.assign(cpu.seg[SEG.CS]!, { selector: 0x18, attrib: ATTR.P | ATTR.S | 0xb | ATTR.DB | ATTR.G });
  for (const i of [SEG.DS, SEG.ES, SEG.SS]) Object.assign(cpu.seg[i]!, { selector: 0x10, attrib: ATTR.P | ATTR.S | 0x3 | ATTR.DB | ATTR.G });
  cpu.gpr[GPR.RSP] = STACK_TOP;
  return cpu;
}

/** Put `bytes` at CODE and execute one instruction there, as the machine's run loop does. */
function exec(cpu: Cpu, bytes: number[]): void {
  cpu.mem.load(CODE, Uint8Array.from(bytes));
  cpu.flushDecodeCache();
  cpu.rip = BigInt(CODE);
  const insn = cpu.fetch();
  cpu.current = insn;
  cpu.nextRip = insn.next;
  insn.exec(cpu, insn);
  cpu.rip = cpu.nextRip;
  cpu.instructions++;
}

function fault(cpu: Cpu, bytes: number[]): [number, number | undefined] {
  try {
    exec(cpu, bytes);
  } catch (e) {
    assert.ok(e instanceof Fault, String(e));
    return [e.vector, e.errorCode];
  }
  assert.fail('no exception');
}

function toUser(cpu: Cpu): void {
  cpu.cpl = 3;
  Object.assign(cpu.seg[SEG.CS]!, { selector: 0x33, attrib: ATTR.P | ATTR.S | 0xb | ATTR.L | ATTR.G | (3 << ATTR.DPL_SHIFT) });
}

const GP = 13, NP = 11, UD = 6, DB = 1;

describe('model system: descriptor-table registers (APM vol. 3 LGDT, SGDT)', () => {
  it('64-bit mode: LGDT reads limit + 8-byte base (10 bytes), SGDT stores 10 bytes', () => {
    const cpu = cpu64();
    cpu.mem.write16(0x7000, 0x57);
    cpu.mem.write64(0x7002, 0xffff_8000_1234_5000n);
    cpu.gpr[GPR.RAX] = 0x7000n;
    exec(cpu, [0x0f, 0x01, 0x10]); // lgdt [rax]
    assert.deepEqual(cpu.gdtr, { base: 0xffff_8000_1234_5000n, limit: 0x57 });
    cpu.mem.fill(0x7100, 16, 0xee);
    cpu.gpr[GPR.RBX] = 0x7100n;
    exec(cpu, [0x0f, 0x01, 0x03]); // sgdt [rbx]
    assert.equal(cpu.mem.read16(0x7100), 0x57);
    assert.equal(cpu.mem.read64(0x7102), 0xffff_8000_1234_5000n);
    assert.equal(cpu.mem.read8(0x710a), 0xee, 'byte 10 untouched');
  });

  it('LIDT with a non-canonical base in 64-bit mode: #GP(0)', () => {
    const cpu = cpu64();
    cpu.mem.write16(0x7000, 0xfff);
    cpu.mem.write64(0x7002, 0x0000_8000_0000_0000n);
    cpu.gpr[GPR.RAX] = 0x7000n;
    assert.deepEqual(fault(cpu, [0x0f, 0x01, 0x18]), [GP, 0]); // lidt [rax]
  });

  it('32-bit code: LGDT reads 6 bytes (32-bit base); with 66h only 24 bits of base count', () => {
    const cpu = cpu32();
    cpu.mem.write16(0x7000, 0x3f);
    cpu.mem.write32(0x7002, 0xaabb_ccdd);
    cpu.mem.write16(0x7006, 0xffff);
    cpu.gpr[GPR.RAX] = 0x7000n;
    exec(cpu, [0x0f, 0x01, 0x10]); // lgdt [eax]
    assert.deepEqual(cpu.gdtr, { base: 0xaabb_ccddn, limit: 0x3f });
    exec(cpu, [0x66, 0x0f, 0x01, 0x10]); // o16 lgdt [eax]
    assert.deepEqual(cpu.gdtr, { base: 0xbb_ccddn, limit: 0x3f });
    cpu.gpr[GPR.RBX] = 0x7100n;
    cpu.mem.fill(0x7100, 16, 0xee);
    exec(cpu, [0x0f, 0x01, 0x03]); // sgdt [ebx]
    assert.equal(cpu.mem.read16(0x7100), 0x3f);
    assert.equal(cpu.mem.read32(0x7102), 0xbb_ccdd);
    assert.equal(cpu.mem.read8(0x7106), 0xee, 'six bytes stored');
  });

  it('LGDT at CPL 3: #GP(0); SGDT is allowed', () => {
    const cpu = cpu64();
    toUser(cpu);
    cpu.gpr[GPR.RAX] = 0x7000n;
    assert.deepEqual(fault(cpu, [0x0f, 0x01, 0x10]), [GP, 0]);
    exec(cpu, [0x0f, 0x01, 0x00]); // sgdt [rax]
    assert.equal(cpu.mem.read16(0x7000), GDT_ENTRIES.length * 8 - 1);
  });
});

describe('model system: control registers and long-mode activation (APM vol. 2 3.1, 14.6)', () => {
  it('MOV CR0 setting PG with EFER.LME = 1 and CR4.PAE = 1 activates long mode (EFER.LMA = 1)', () => {
    const cpu = cpu32();
    cpu.cr4 = 0x20n;
    cpu.cr3 = BigInt(PML4);
    cpu.efer = EFER_LME;
    cpu.gpr[GPR.RAX] = 0x8000_0011n;
    exec(cpu, [0x0f, 0x22, 0xc0]); // mov cr0, eax
    assert.equal(cpu.efer & EFER_LMA, EFER_LMA);
    assert.equal(cpu.longMode, true);
    assert.equal(cpu.mode64, false, 'compatibility mode until a 64-bit CS is loaded');
  });

  it('PG with EFER.LME = 1 but CR4.PAE = 0: #GP(0), nothing changes', () => {
    const cpu = cpu32();
    cpu.efer = EFER_LME;
    cpu.gpr[GPR.RAX] = 0x8000_0011n;
    assert.deepEqual(fault(cpu, [0x0f, 0x22, 0xc0]), [GP, 0]);
    assert.equal(cpu.cr0, 0x11n);
    assert.equal(cpu.efer, EFER_LME);
  });

  it('PG without PE, NW without CD: #GP(0); ET reads 1', () => {
    const cpu = cpu32();
    cpu.gpr[GPR.RAX] = 0x8000_0000n;
    assert.deepEqual(fault(cpu, [0x0f, 0x22, 0xc0]), [GP, 0]);
    cpu.gpr[GPR.RAX] = 0x2000_0001n;
    assert.deepEqual(fault(cpu, [0x0f, 0x22, 0xc0]), [GP, 0]);
    cpu.gpr[GPR.RAX] = 0x1n;
    exec(cpu, [0x0f, 0x22, 0xc0]);
    exec(cpu, [0x0f, 0x20, 0xc3]); // mov ebx, cr0
    assert.equal(cpu.gpr[GPR.RBX], 0x11n);
  });

  it('in long mode: clearing CR4.PAE, a reserved CR4 bit, CR0 bits 63:32, clearing PG in 64-bit mode → #GP(0)', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RAX] = 0n;
    assert.deepEqual(fault(cpu, [0x0f, 0x22, 0xe0]), [GP, 0]); // mov cr4, rax
    cpu.gpr[GPR.RAX] = 0x20n | (1n << 12n); // LA57: not in the profile
    assert.deepEqual(fault(cpu, [0x0f, 0x22, 0xe0]), [GP, 0]);
    cpu.gpr[GPR.RAX] = (1n << 32n) | cpu.cr0;
    assert.deepEqual(fault(cpu, [0x0f, 0x22, 0xc0]), [GP, 0]);
    cpu.gpr[GPR.RAX] = 0x11n;
    assert.deepEqual(fault(cpu, [0x0f, 0x22, 0xc0]), [GP, 0]);
  });

  it('CR3 with bits above the physical-address width in long mode: #GP(0); CR8 holds 4 bits', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RAX] = 1n << 52n;
    assert.deepEqual(fault(cpu, [0x0f, 0x22, 0xd8]), [GP, 0]); // mov cr3, rax
    cpu.gpr[GPR.RAX] = 0xfn;
    exec(cpu, [0x44, 0x0f, 0x22, 0xc0]); // mov cr8, rax
    assert.equal(cpu.cr8, 0xfn);
    cpu.gpr[GPR.RAX] = 0x10n;
    assert.deepEqual(fault(cpu, [0x44, 0x0f, 0x22, 0xc0]), [GP, 0]);
  });

  it('MOV CRn at CPL 3: #GP(0); CR5 (iced already decodes it as invalid): #UD', () => {
    const cpu = cpu64();
    assert.throws(() => readCr(cpu, 5), (e: Fault) => e.vector === UD);
    toUser(cpu);
    assert.deepEqual(fault(cpu, [0x0f, 0x20, 0xc0]), [GP, 0]); // mov rax, cr0
  });

  it('movControl is exported and declines general-purpose MOV forms', () => {
    const cpu = cpu64();
    const insn = { ops: [{ kind: 'reg', reg: { kind: 'gpr', index: 0, size: 8, high8: false }, size: 8 }, { kind: 'imm', size: 8, value: 1n }] };
    assert.equal(movControl(cpu, insn as never), false);
  });
});

describe('model system: debug registers (APM vol. 2 13.1.1)', () => {
  it('DR4/DR5 alias DR6/DR7 with CR4.DE = 0, #UD with CR4.DE = 1; DR6/DR7 fixed bits', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RAX] = 0n;
    exec(cpu, [0x0f, 0x23, 0xe8]); // mov dr5, rax → DR7
    assert.equal(cpu.dr[7], 0x400n);
    cpu.gpr[GPR.RAX] = 0n;
    exec(cpu, [0x0f, 0x23, 0xf0]); // mov dr6, rax
    assert.equal(cpu.dr[6], 0xffff_0ff0n);
    exec(cpu, [0x0f, 0x21, 0xe3]); // mov rbx, dr4 → DR6
    assert.equal(cpu.gpr[GPR.RBX], 0xffff_0ff0n);
    cpu.cr4 |= 1n << 3n;
    assert.deepEqual(fault(cpu, [0x0f, 0x21, 0xe3]), [UD, undefined]);
  });

  it('DR7.GD: the next MOV DRn is a #DB with DR6.BD set and GD cleared (13.1.1.5)', () => {
    const cpu = cpu64();
    cpu.dr[6] = 0xffff_0ff0n;
    cpu.dr[7] = 0x2400n;
    assert.deepEqual(fault(cpu, [0x0f, 0x21, 0xc0]), [DB, undefined]); // mov rax, dr0
    assert.equal(cpu.dr[6]! & 0x2000n, 0x2000n);
    assert.equal(cpu.dr[7], 0x400n);
  });
});

describe('model system: MSRs and CPUID (APM vol. 3 RDMSR, WRMSR, CPUID)', () => {
  it('RDMSR of an MSR the model does not have: #GP(0)', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RCX] = 0xc001_1234n;
    assert.deepEqual(fault(cpu, [0x0f, 0x32]), [GP, 0]);
    cpu.gpr[GPR.RCX] = 0x1bn; // APIC_BASE: no APIC in the model
    assert.deepEqual(fault(cpu, [0x0f, 0x32]), [GP, 0]);
  });

  it('EFER reads into EDX:EAX; LMA is read-only; LME cannot change while CR0.PG = 1 (14.6.1)', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RCX] = 0xc000_0080n;
    cpu.gpr[GPR.RDX] = 0xdeadn;
    exec(cpu, [0x0f, 0x32]);
    assert.equal(cpu.gpr[GPR.RAX], 0xd00n); // LME | LMA | NXE
    assert.equal(cpu.gpr[GPR.RDX], 0n);
    cpu.gpr[GPR.RAX] = 0x100n; // LME without NXE, LMA written 0
    exec(cpu, [0x0f, 0x30]);
    assert.equal(cpu.efer, EFER_LME | EFER_LMA);
    cpu.gpr[GPR.RAX] = 0x800n; // clear LME with paging on
    assert.deepEqual(fault(cpu, [0x0f, 0x30]), [GP, 0]);
    // SVME (APM vol. 2 15.4): settable where CPUID 8000_0001 ECX[2] reports SVM and VM_CR.SVMDIS = 0
    cpu.gpr[GPR.RAX] = 0x1100n;
    exec(cpu, [0x0f, 0x30]);
    assert.equal(cpu.efer, EFER_LME | EFER_LMA | (1n << 12n));
    cpu.msr.set(0xc001_0114, 1n << 4n); // VM_CR.SVMDIS
    cpu.gpr[GPR.RAX] = 0x1100n;
    assert.deepEqual(fault(cpu, [0x0f, 0x30]), [GP, 0]);
    // a profile without SVM: #GP(0)
    const noSvm = cpu64();
    const ext = DEFAULT_PROFILE.cpuid['0x80000001']!;
    noSvm.profile = { ...DEFAULT_PROFILE, cpuid: { ...DEFAULT_PROFILE.cpuid, '0x80000001': { ...ext, ecx: ext.ecx & ~(1 << 2) } } };
    noSvm.gpr[GPR.RCX] = 0xc000_0080n;
    noSvm.gpr[GPR.RDX] = 0n;
    noSvm.gpr[GPR.RAX] = 0x1100n;
    assert.deepEqual(fault(noSvm, [0x0f, 0x30]), [GP, 0]);
  });

  it('plain-storage MSRs: VM_HSAVE_PA (4 KiB aligned), VM_CR reads 0, PAT resets to 0007040600070406h, FS base', () => {
    const cpu = cpu64();
    assert.equal(readMsr(cpu, 0xc001_0114), 0n);
    assert.equal(readMsr(cpu, 0x277), 0x0007_0406_0007_0406n);
    cpu.gpr[GPR.RCX] = 0xc001_0117n;
    cpu.gpr[GPR.RDX] = 0n;
    cpu.gpr[GPR.RAX] = 0x80_1000n;
    exec(cpu, [0x0f, 0x30]);
    assert.equal(readMsr(cpu, 0xc001_0117), 0x80_1000n);
    cpu.gpr[GPR.RAX] = 0x80_1008n;
    assert.deepEqual(fault(cpu, [0x0f, 0x30]), [GP, 0]);
    cpu.gpr[GPR.RCX] = 0xc000_0100n;
    cpu.gpr[GPR.RDX] = 0xffff_8000n;
    cpu.gpr[GPR.RAX] = 0x1000n;
    exec(cpu, [0x0f, 0x30]);
    assert.equal(cpu.seg[SEG.FS]!.base, 0xffff_8000_0000_1000n);
  });

  it('RDMSR/WRMSR at CPL 3: #GP(0); the TSC counts retired instructions', () => {
    const cpu = cpu64();
    cpu.instructions = 1000;
    cpu.gpr[GPR.RCX] = 0x10n;
    exec(cpu, [0x0f, 0x32]);
    assert.equal(cpu.gpr[GPR.RAX], 1000n);
    toUser(cpu);
    assert.deepEqual(fault(cpu, [0x0f, 0x32]), [GP, 0]);
  });

  it('CPUID returns the profile: leaf 0 vendor in EBX EDX ECX, leaf 8000_0001 EDX with LM and NX', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RAX] = 0xffff_ffff_0000_0000n; // only EAX counts
    cpu.gpr[GPR.RCX] = 0n;
    exec(cpu, [0x0f, 0xa2]);
    const vendor = Buffer.alloc(12);
    vendor.writeUInt32LE(Number(cpu.gpr[GPR.RBX]), 0);
    vendor.writeUInt32LE(Number(cpu.gpr[GPR.RDX]), 4);
    vendor.writeUInt32LE(Number(cpu.gpr[GPR.RCX]), 8);
    assert.equal(vendor.toString('latin1'), 'AuthenticAMD');
    assert.equal(cpu.gpr[GPR.RAX], BigInt(DEFAULT_PROFILE.cpuid['0x0']!.eax));
    cpu.gpr[GPR.RAX] = 0x8000_0001n;
    exec(cpu, [0x0f, 0xa2]);
    assert.equal(cpu.gpr[GPR.RDX]! & ((1n << 29n) | (1n << 20n)), (1n << 29n) | (1n << 20n));
    cpu.gpr[GPR.RAX] = 0x4000_0000n; // absent leaf: zeros
    exec(cpu, [0x0f, 0xa2]);
    assert.deepEqual([cpu.gpr[GPR.RAX], cpu.gpr[GPR.RBX], cpu.gpr[GPR.RCX], cpu.gpr[GPR.RDX]], [0n, 0n, 0n, 0n]);
  });
});

describe('model system: segment registers (APM vol. 2 4.10; vol. 3 MOV (segment), POP)', () => {
  it('MOV SS loads SS and sets the interrupt shadow; MOV DS sets the descriptor accessed bit', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RAX] = 0x10n;
    exec(cpu, [0x8e, 0xd0]); // mov ss, eax
    assert.equal(cpu.interruptShadow, true);
    assert.equal(cpu.seg[SEG.SS]!.selector, 0x10);
    cpu.interruptShadow = false;
    exec(cpu, [0x8e, 0xd8]); // mov ds, eax
    assert.equal(cpu.interruptShadow, false, 'only SS loads hold interrupts');
    assert.equal(cpu.mem.read8(GDT + 0x10 + 5), 0x93, 'type 2 → 3 (accessed)');
  });

  it('MOV DS errors: beyond the GDT limit #GP(sel), execute-only code #GP(sel), not present #NP(sel), DPL < CPL #GP(sel)', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RAX] = 0x80n;
    assert.deepEqual(fault(cpu, [0x8e, 0xd8]), [GP, 0x80]);
    cpu.gpr[GPR.RAX] = 0x50n;
    assert.deepEqual(fault(cpu, [0x8e, 0xd8]), [GP, 0x50]);
    cpu.gpr[GPR.RAX] = 0x48n;
    assert.deepEqual(fault(cpu, [0x8e, 0xd8]), [NP, 0x48]);
    toUser(cpu);
    cpu.gpr[GPR.RAX] = 0x13n; // RPL 3, DPL 0
    assert.deepEqual(fault(cpu, [0x8e, 0xd8]), [GP, 0x10]);
    cpu.gpr[GPR.RAX] = 0x2bn;
    exec(cpu, [0x8e, 0xd8]);
    assert.equal(cpu.seg[SEG.DS]!.selector, 0x2b);
  });

  it('MOV SS errors: RPL ≠ CPL or a read-only/code segment #GP(sel); null SS is #GP(0) outside 64-bit mode', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RAX] = 0x2bn;
    assert.deepEqual(fault(cpu, [0x8e, 0xd0]), [GP, 0x28]);
    cpu.gpr[GPR.RAX] = 0x08n;
    assert.deepEqual(fault(cpu, [0x8e, 0xd0]), [GP, 0x08]);
    cpu.gpr[GPR.RAX] = 0n;
    exec(cpu, [0x8e, 0xd0]); // null SS at CPL 0 in 64-bit mode is allowed
    assert.equal(cpu.seg[SEG.SS]!.selector, 0);
    const c32 = cpu32();
    c32.gpr[GPR.RAX] = 0n;
    assert.deepEqual(fault(c32, [0x8e, 0xd0]), [GP, 0]);
  });

  it('POP SS (32-bit) loads SS, advances ESP by 4 and sets the shadow; a faulting POP DS leaves ESP', () => {
    const cpu = cpu32();
    cpu.mem.write32(0x8ff0, 0x10);
    cpu.gpr[GPR.RSP] = 0x8ff0n;
    exec(cpu, [0x17]); // pop ss
    assert.equal(cpu.gpr[GPR.RSP], 0x8ff4n);
    assert.equal(cpu.interruptShadow, true);
    cpu.mem.write32(0x8ff4, 0x48);
    assert.deepEqual(fault(cpu, [0x1f]), [NP, 0x48]); // pop ds
    assert.equal(cpu.gpr[GPR.RSP], 0x8ff4n);
  });

  it('null DS/FS in 64-bit mode: allowed; with NullSelectClearsBase the FS base is cleared', () => {
    const cpu = cpu64();
    cpu.seg[SEG.FS]!.base = 0x1234n;
    cpu.gpr[GPR.RAX] = 0n;
    exec(cpu, [0x8e, 0xe0]); // mov fs, eax
    assert.equal(cpu.seg[SEG.FS]!.base, 0n);
    assert.equal(cpu.seg[SEG.FS]!.attrib & ATTR.P, 0);
  });

  it('real mode: MOV DS sets base = selector × 16', () => {
    const cpu = newCpu();
    cpu.cr0 = 0x10n;
    cpu.gpr[GPR.RAX] = 0x1234n;
    exec(cpu, [0x8e, 0xd8]);
    assert.equal(cpu.seg[SEG.DS]!.base, 0x12340n);
  });

  it('LTR marks the 64-bit TSS busy and loads its base; a busy TSS: #GP(sel); STR reads TR', () => {
    const cpu = cpu64();
    cpu.gpr[GPR.RAX] = 0x38n;
    exec(cpu, [0x0f, 0x00, 0xd8]); // ltr ax
    assert.equal(cpu.tr.selector, 0x38);
    assert.equal(cpu.tr.base, 0x6000n);
    assert.equal(cpu.tr.limit, 0x67);
    assert.equal(cpu.tr.attrib & 0xf, 0xb);
    assert.equal(cpu.mem.read8(GDT + 0x38 + 5), 0x8b);
    assert.deepEqual(fault(cpu, [0x0f, 0x00, 0xd8]), [GP, 0x38]);
    cpu.gpr[GPR.RBX] = 0xffff_ffff_ffff_ffffn;
    exec(cpu, [0x0f, 0x00, 0xcb]); // str ebx
    assert.equal(cpu.gpr[GPR.RBX], 0x38n);
    cpu.gpr[GPR.RAX] = 0x10n;
    assert.deepEqual(fault(cpu, [0x0f, 0x00, 0xd8]), [GP, 0x10], 'a data segment is not a TSS');
  });

  it('code-segment helpers: far JMP privilege rules, RET to CPL 3, loadCodeSegment sets CPL and RPL', () => {
    const cpu = cpu64();
    const user64 = readDescriptor(cpu, 0x33);
    assert.throws(() => checkCodeForJump(cpu, 0x33, user64), (e: Fault) => e.vector === GP && e.errorCode === 0x30);
    assert.equal(checkCodeForReturn(cpu, 0x33, user64), 3);
    loadCodeSegment(cpu, 0x33, user64, 3);
    assert.equal(cpu.cpl, 3);
    assert.equal(cpu.seg[SEG.CS]!.selector, 0x33);
    assert.equal(cpu.mode64, true);
    assert.equal(cpu.mem.read8(GDT + 0x30 + 5), 0xfb, 'accessed bit set');
    const kernel = readDescriptor(cpu, 0x08);
    assert.throws(() => checkCodeForReturn(cpu, 0x08, kernel), (e: Fault) => e.vector === GP && e.errorCode === 0x08, 'RET to an inner level');
  });
});

describe('model system: RFLAGS, interrupt flag, I/O, HLT (APM vol. 3 POPF, STI, IN, OUT, HLT)', () => {
  it('POPFQ at CPL 0 loads IOPL and IF; RF and VM are not changed; bit 1 stays set', () => {
    const cpu = cpu64();
    cpu.rflags = 0x2 | (1 << 16);
    cpu.gpr[GPR.RSP] = 0x8ff8n;
    cpu.mem.write64(0x8ff8, 0x0000_0000_0002_3ed5n); // VM IOPL=3 IF DF OF SF ZF AF PF CF, bit 1 clear
    exec(cpu, [0x9d]); // popfq
    assert.equal(cpu.rflags, 0x1_3ed7); // 0x3ed5 with bit 1, RF kept, VM not taken
    assert.equal(cpu.gpr[GPR.RSP], 0x9000n);
  });

  it('POPFQ at CPL 3 with IOPL 0: IOPL and IF silently unchanged, other flags loaded', () => {
    const cpu = cpu64();
    toUser(cpu);
    cpu.rflags = 0x2;
    cpu.gpr[GPR.RSP] = 0x8ff8n;
    cpu.mem.write64(0x8ff8, 0x3ed5n);
    exec(cpu, [0x9d]);
    assert.equal(cpu.rflags, 0xcd7); // IF (0x200) and IOPL (0x3000) dropped
  });

  it('POPF with 66h pops 16 bits and leaves RFLAGS bits 31:16; PUSHFQ clears RF and VM in the image', () => {
    const cpu = cpu64();
    cpu.rflags = 0x4_0002 | (1 << 16); // AC, RF
    cpu.gpr[GPR.RSP] = 0x8ffen;
    cpu.mem.write16(0x8ffe, 0x0001);
    exec(cpu, [0x66, 0x9d]); // popfw
    assert.equal(cpu.rflags, 0x5_0003);
    assert.equal(cpu.gpr[GPR.RSP], 0x9000n);
    exec(cpu, [0x9c]); // pushfq
    assert.equal(cpu.mem.read64(0x8ff8), 0x4_0003n);
  });

  it('STI sets IF and the interrupt shadow only when IF was 0; CLI/STI at CPL > IOPL: #GP(0)', () => {
    const cpu = cpu64();
    exec(cpu, [0xfb]);
    assert.equal(cpu.rflags & 0x200, 0x200);
    assert.equal(cpu.interruptShadow, true);
    cpu.interruptShadow = false;
    exec(cpu, [0xfb]);
    assert.equal(cpu.interruptShadow, false);
    toUser(cpu);
    assert.deepEqual(fault(cpu, [0xfa]), [GP, 0]);
  });

  it('IN/OUT go through the port hooks with the operand size; at CPL 3 > IOPL #GP(0)', () => {
    const cpu = cpu64();
    ports.length = 0;
    cpu.gpr[GPR.RAX] = 0xffff_ffff_ffff_ffffn;
    exec(cpu, [0xe5, 0x60]); // in eax, 0x60
    assert.equal(cpu.gpr[GPR.RAX], 0x1234_5678n);
    cpu.gpr[GPR.RDX] = 0x3f8n;
    exec(cpu, [0xee]); // out dx, al
    exec(cpu, [0xe7, 0xf4]); // out 0xf4, eax
    assert.deepEqual(ports, [[0x3f8, 1, 0x78], [0xf4, 4, 0x1234_5678]]);
    toUser(cpu);
    assert.deepEqual(fault(cpu, [0xee]), [GP, 0]);
    cpu.rflags |= 0x3000;
    exec(cpu, [0xee]);
  });

  it('HLT halts at CPL 0 with RIP after it; #GP(0) at CPL 3', () => {
    const cpu = cpu64();
    exec(cpu, [0xf4]);
    assert.equal(cpu.halted, true);
    assert.equal(cpu.rip, BigInt(CODE + 1));
    const user = cpu64();
    toUser(user);
    assert.deepEqual(fault(user, [0xf4]), [GP, 0]);
  });
});
