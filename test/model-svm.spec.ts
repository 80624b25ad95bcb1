// SVM in the model (APM vol. 2 ch. 15; docs/svm-rules.md): VMRUN → guest → #VMEXIT round
// trips on a small machine, with expectations derived by hand from the manual (sections cited per
// test), and the defined-bits masks (model/svm/masks.ts).
//
// The machine: 16 MiB, host and guest share identity page tables (2 MiB pages) at 0x200000; the
// guest runs 64-bit at CPL 0 with its own IDT at GIDT; the VMCB at VMCB_PA, host save area at HSAVE.

import assert from 'node:assert/strict';
import { Cpu } from '../model/cpu/cpu.ts';
import { ATTR, GPR, SEG, type Segment } from '../model/cpu/state.ts';
import { PhysicalMemory } from '../model/memory.ts';
import { translate } from '../model/paging.ts';
import { handlerFor } from '../model/isa/index.ts';
import { step } from '../model/events/boundary.ts';
import { DEFAULT_PROFILE, type Profile } from '../model/profile.ts';
import { Vmcb } from '../model/svm/vmcb.ts';
import { guestOf } from '../model/svm/guest.ts';
import { lastInjectionUnspecified, lastVmrunFailure } from '../model/svm/vmrun.ts';
import { fieldMask, recordMask } from '../model/svm/masks.ts';
import { CR0, CR4, RFLAGS, VEC } from '../arch/x86.ts';
import { PTE } from '../arch/paging.ts';
import {
  CPUID_EXT_ECX, CPUID_SVM_EDX, EFER, EVENT_TYPE, EXIT, INTERCEPT_MISC1, INTERCEPT_MISC2, MSR, NESTED_CTL, VMCB, VMCB_SAVE, makeEventInj,
} from '../arch/svm.ts';

function svmProfile({ nrips = true, decodeAssists = false } = {}): Profile {
  const cpuid = { ...DEFAULT_PROFILE.cpuid };
  const ext = cpuid['0x80000001']!;
  cpuid['0x80000001'] = { ...ext, ecx: ext.ecx | (1 << CPUID_EXT_ECX.SVM) };
  const edx = (1 << CPUID_SVM_EDX.NP) | (nrips ? 1 << CPUID_SVM_EDX.NRIPS : 0) | (decodeAssists ? 1 << CPUID_SVM_EDX.DECODE_ASSISTS : 0);
  cpuid['0x8000000a'] = { eax: 1, ebx: 0x8000, ecx: 0, edx };
  return { ...DEFAULT_PROFILE, name: 'test-svm', cpuid };
}

const PT = 0x200000; // host = guest page tables: PML4, PDPT, PD (2 MiB pages, 0–16 MiB)
const GDT = 0x5000;
const GIDT = 0x6000;
const HOST_CODE = 0x30000;
const GUEST_CODE = 0x40000;
const HANDLER = 0x41000;
const GUEST_STACK = 0x48000;
const VMCB_PA = 0x100000;
const HSAVE = 0x101000;
const NPT = 0x300000; // nested PML4, PDPT, PD, and a PT for the first 2 MiB
const RWU = PTE.P | PTE.W | PTE.US;
const CODE64 = ATTR.P | ATTR.S | ATTR.TYPE_CODE | ATTR.TYPE_RW | ATTR.TYPE_ACCESSED | ATTR.L;
const DATA = ATTR.P | ATTR.S | ATTR.TYPE_RW | ATTR.TYPE_ACCESSED | ATTR.DB;
const seg = (selector: number, attrib: number): Segment => ({ selector, attrib, base: 0n, limit: 0xffff_ffff });
const VMRUN = [0x0f, 0x01, 0xd8];
const VMMCALL = [0x0f, 0x01, 0xd9];

function gate(vector: number, offset: number, { type = 0xe, dpl = 0, present = true } = {}) {
  return (mem: PhysicalMemory): void => {
    const lo = BigInt(offset & 0xffff) | (0x08n << 16n) | (BigInt(type | (dpl << 5) | (present ? 0x80 : 0)) << 40n) | (BigInt((offset >>> 16) & 0xffff) << 48n);
    mem.write64(GIDT + 16 * vector, lo);
    mem.write64(GIDT + 16 * vector + 8, 0n);
  };
}

interface Setup {
  profile?: Profile;
  misc1?: number;
  misc2?: number;
  excp?: number;
  eventInj?: bigint;
  nextRip?: bigint;
  guest?: number[];
  gates?: Array<(mem: PhysicalMemory) => void>;
  idtBase?: bigint;
  asid?: number;
  nested?: (mem: PhysicalMemory) => void;
}

function machine(s: Setup = {}): { cpu: Cpu; vmcb: Vmcb } {
  const mem = new PhysicalMemory(16 << 20);
  const cpu = new Cpu(mem, { translate, handlerFor, portIn: () => 0xff, portOut: () => {} });
  cpu.profile = s.profile ?? svmProfile();
  mem.write64(PT, BigInt(PT + 0x1000) | RWU);
  mem.write64(PT + 0x1000, BigInt(PT + 0x2000) | RWU);
  for (let i = 0; i < 8; i++) mem.write64(PT + 0x2000 + 8 * i, BigInt(i << 21) | RWU | PTE.PS);
  mem.write64(GDT + 8, 0x00af_9b00_0000_ffffn);
  mem.write64(GDT + 16, 0x00cf_9300_0000_ffffn);
  cpu.cr0 = CR0.PE | CR0.ET | CR0.PG;
  cpu.cr4 = CR4.PAE;
  cpu.efer = EFER.SVME | EFER.LME | EFER.LMA | EFER.NXE;
  cpu.cr3 = BigInt(PT);
  cpu.seg[SEG.CS] = seg(0x08, CODE64);
  for (const i of [SEG.ES, SEG.SS, SEG.DS]) cpu.seg[i] = seg(0x10, DATA);
  cpu.gdtr = { base: BigInt(GDT), limit: 0x17 };
  cpu.msr.set(MSR.VM_HSAVE_PA, BigInt(HSAVE));
  cpu.gpr[GPR.RSP] = 0x38000n;
  cpu.gpr[GPR.RAX] = BigInt(VMCB_PA);
  cpu.rip = BigInt(HOST_CODE);
  mem.load(HOST_CODE, Uint8Array.from(VMRUN));
  mem.load(GUEST_CODE, Uint8Array.from(s.guest ?? VMMCALL));
  mem.load(HANDLER, Uint8Array.from(VMMCALL));

  const v = new Vmcb(mem, VMCB_PA);
  v.setControl({
    interceptExceptions: s.excp ?? 0,
    interceptMisc1: s.misc1 ?? 0,
    interceptMisc2: (1 << INTERCEPT_MISC2.VMRUN) | (1 << INTERCEPT_MISC2.VMMCALL) | (s.misc2 ?? 0),
    asid: s.asid ?? 1,
    eventInj: s.eventInj ?? 0n,
    nextRip: s.nextRip ?? 0xdead_beefn,
    exitIntInfo: 0x5a5a_5a5an, // a sentinel: what #VMEXIT leaves unwritten stays visible
  });
  v.setSave({
    es: seg(0x10, DATA), cs: seg(0x08, CODE64), ss: seg(0x10, DATA), ds: seg(0x10, DATA),
    gdtr: { base: BigInt(GDT), limit: 0x17 }, idtr: { base: s.idtBase ?? BigInt(GIDT), limit: 0xfff },
    cpl: 0, efer: cpu.efer, cr0: cpu.cr0, cr3: cpu.cr3, cr4: cpu.cr4,
    dr6: 0xffff_0ff0n, dr7: 0x400n, rflags: RFLAGS.FIXED1, rip: BigInt(GUEST_CODE), rsp: BigInt(GUEST_STACK),
    gPat: 0x0007_0406_0007_0406n,
  });
  for (const g of s.gates ?? []) g(mem);
  if (s.nested) {
    mem.write64(NPT, BigInt(NPT + 0x1000) | RWU);
    mem.write64(NPT + 0x1000, BigInt(NPT + 0x2000) | RWU);
    mem.write64(NPT + 0x2000, BigInt(NPT + 0x3000) | RWU);
    for (let i = 1; i < 8; i++) mem.write64(NPT + 0x2000 + 8 * i, BigInt(i << 21) | RWU | PTE.PS);
    for (let i = 0; i < 512; i++) mem.write64(NPT + 0x3000 + 8 * i, BigInt(i << 12) | RWU);
    v.set64(VMCB.NESTED_CTL, 1n << BigInt(NESTED_CTL.NP_ENABLE_BIT));
    v.set64(VMCB.NCR3, BigInt(NPT));
    s.nested(mem);
  }
  return { cpu, vmcb: v };
}

/** VMRUN, then the guest until the #VMEXIT (at most 100 instructions). */
function run(s: Setup = {}): { cpu: Cpu; vmcb: Vmcb } {
  const m = machine(s);
  step(m.cpu);
  for (let n = 0; n < 100 && guestOf(m.cpu); n++) step(m.cpu);
  assert.equal(guestOf(m.cpu), undefined, 'the guest did not exit');
  // 15.6: the host resumes after its VMRUN with GIF = 0; every exit clears EVENTINJ (vol. 3 VMRUN)
  assert.equal(m.cpu.rip, BigInt(HOST_CODE + 3));
  assert.equal(m.cpu.gif, false);
  assert.equal(m.vmcb.u64(VMCB.EVENT_INJ), 0n);
  return m;
}

const exitOf = (v: Vmcb) => ({
  code: v.u64(VMCB.EXIT_CODE), info1: v.u64(VMCB.EXIT_INFO_1), info2: v.u64(VMCB.EXIT_INFO_2),
  intInfo: v.u64(VMCB.EXIT_INT_INFO), nextRip: v.u64(VMCB.NEXT_RIP), rip: v.u64(VMCB_SAVE.RIP), rsp: v.u64(VMCB_SAVE.RSP),
});
const inj = (type: number, vector: number, errorCode?: number): bigint =>
  makeEventInj({ type, vector, ...(errorCode !== undefined ? { ev: true, errorCode } : {}) });
/** The 64-bit frame L2's handler got (APM vol. 2 8.9.3): [error code,] RIP, CS, RFLAGS, RSP, SS. */
function frame(cpu: Cpu, rsp: bigint, withError: boolean) {
  const at = (i: number) => cpu.mem.read64(Number(rsp) + 8 * i);
  const o = withError ? 1 : 0;
  return { err: withError ? at(0) : undefined, rip: at(o), cs: at(o + 1), depth: BigInt(GUEST_STACK) - rsp };
}

describe('model SVM: VMRUN and #VMEXIT (APM vol. 2 15.5, 15.6)', () => {
  it('VMMCALL round trip with NRIPS: exit 0x81, RIP at the VMMCALL, next_rip after it, EXITINTINFO 0 (15.7.1, 15.7.2)', () => {
    const { vmcb } = run();
    const e = exitOf(vmcb);
    assert.equal(e.code, EXIT.VMMCALL);
    assert.equal(e.rip, BigInt(GUEST_CODE));
    assert.equal(e.nextRip, BigInt(GUEST_CODE + 3));
    assert.equal(e.intInfo, 0n);
  });

  it('without NRIPS next_rip is not written (unspecified: the VMM\'s value stays)', () => {
    const { vmcb } = run({ profile: svmProfile({ nrips: false }) });
    assert.equal(exitOf(vmcb).nextRip, 0xdead_beefn);
  });

  for (const [what, s, why] of [
    ['TYPE 3 vector 2', { eventInj: inj(EVENT_TYPE.EXCEPTION, 2) }, 'not an exception'],
    ['TYPE 3 vector 15', { eventInj: inj(EVENT_TYPE.EXCEPTION, 15) }, 'not an exception'],
    ['reserved TYPE 5', { eventInj: makeEventInj({ type: 5, vector: 0x20 }) }, 'reserved'],
    ['ASID 0', { asid: 0 }, 'ASID is zero'],
  ] as const) {
    it(`VMEXIT_INVALID for ${what}: EXITCODE all ones, no delivery, EXITINTINFO and next_rip untouched (15.5.1, 15.20)`, () => {
      const { cpu, vmcb } = run({ ...s, gates: [gate(0x20, HANDLER), gate(2, HANDLER), gate(15, HANDLER)] });
      const e = exitOf(vmcb);
      assert.equal(e.code, EXIT.INVALID);
      assert.equal(e.code, 0xffff_ffff_ffff_ffffn);
      assert.equal(e.intInfo, 0x5a5a_5a5an);
      assert.equal(e.nextRip, 0xdead_beefn);
      assert.equal(e.rip, BigInt(GUEST_CODE)); // save area not written back
      assert.match(lastVmrunFailure(cpu)!, new RegExp(why));
    });
  }
});

describe('model SVM: VMRUN loads RFLAGS.RF for the guest (APM vol. 2 15.5.1, 3.1.6, 13.1.3.1)', () => {
  for (const rf of [false, true]) {
    it(`a DR0 breakpoint on L2's first instruction ${rf ? 'is suppressed by RF = 1 in the VMCB: the instruction runs' : 'raises #DB, intercepted: exit 0x41 at that instruction'}`, () => {
      const m = machine({ excp: 1 << VEC.DB });
      m.cpu.dr[0] = BigInt(GUEST_CODE); // DR0-3 are not switched by VMRUN; DR7 is (L0 = 1, R/W0 = LEN0 = 00)
      m.vmcb.set64(VMCB_SAVE.DR7, 0x401n);
      m.vmcb.set64(VMCB_SAVE.RFLAGS, RFLAGS.FIXED1 | (rf ? RFLAGS.RF : 0n));
      step(m.cpu);
      for (let n = 0; n < 10 && guestOf(m.cpu); n++) step(m.cpu);
      const e = exitOf(m.vmcb);
      assert.equal(e.code, rf ? EXIT.VMMCALL : EXIT.EXCP_DB);
      assert.equal(e.rip, BigInt(GUEST_CODE));
    });
  }
});

describe('model SVM: event injection (APM vol. 2 15.20)', () => {
  const base = { gates: [gate(0x80, HANDLER), gate(0x30, HANDLER), gate(VEC.GP, HANDLER), gate(VEC.NMI, HANDLER), gate(VEC.BP, HANDLER), gate(VEC.DB, HANDLER)] };

  it('TYPE 4 with NRIPS: delivered unconditionally, pushed RIP = next_rip (trap semantics); the exit after it has EXITINTINFO.V = 0', () => {
    const { cpu, vmcb } = run({ ...base, eventInj: inj(EVENT_TYPE.SOFT_INT, 0x80), nextRip: BigInt(GUEST_CODE + 2) });
    const e = exitOf(vmcb);
    assert.equal(e.code, EXIT.VMMCALL);
    assert.equal(e.rip, BigInt(HANDLER));
    assert.equal(e.intInfo, 0n);
    const f = frame(cpu, e.rsp, false);
    assert.equal(f.rip, BigInt(GUEST_CODE + 2));
    assert.equal(f.cs, 0x08n);
    assert.equal(f.depth, 40n); // SS, RSP, RFLAGS, CS, RIP: no error code (EV = 0)
    assert.equal(lastInjectionUnspecified(cpu), false);
  });

  it('TYPE 4 without NRIPS: the model pushes the VMCB RIP and reports it unspecified ("cannot be properly injected")', () => {
    const { cpu, vmcb } = run({ ...base, profile: svmProfile({ nrips: false }), eventInj: inj(EVENT_TYPE.SOFT_INT, 0x80), nextRip: BigInt(GUEST_CODE + 2) });
    assert.equal(frame(cpu, exitOf(vmcb).rsp, false).rip, BigInt(GUEST_CODE));
    assert.equal(lastInjectionUnspecified(cpu), true);
  });

  it('TYPE 3 #GP with EV = 1 pushes the error code; with EV = 0 none (15.20: "if EV is set")', () => {
    let m = run({ ...base, eventInj: inj(EVENT_TYPE.EXCEPTION, VEC.GP, 0x1234), nextRip: BigInt(GUEST_CODE + 2) });
    let f = frame(m.cpu, exitOf(m.vmcb).rsp, true);
    assert.deepEqual([f.err, f.rip, f.depth], [0x1234n, BigInt(GUEST_CODE), 48n]); // a fault: VMCB RIP, not next_rip
    m = run({ ...base, eventInj: inj(EVENT_TYPE.EXCEPTION, VEC.GP) });
    f = frame(m.cpu, exitOf(m.vmcb).rsp, false);
    assert.deepEqual([f.rip, f.depth], [BigInt(GUEST_CODE), 40n]);
  });

  it('TYPE 3 vector 3 is trap-like (next_rip with NRIPS); vector 1 is not (VMCB RIP)', () => {
    let m = run({ ...base, eventInj: inj(EVENT_TYPE.EXCEPTION, VEC.BP), nextRip: BigInt(GUEST_CODE + 1) });
    assert.equal(frame(m.cpu, exitOf(m.vmcb).rsp, false).rip, BigInt(GUEST_CODE + 1));
    m = run({ ...base, eventInj: inj(EVENT_TYPE.EXCEPTION, VEC.DB), nextRip: BigInt(GUEST_CODE + 1) });
    assert.equal(frame(m.cpu, exitOf(m.vmcb).rsp, false).rip, BigInt(GUEST_CODE));
  });

  it('TYPE 0 (INTR) through its vector; TYPE 2 (NMI) through vector 2 whatever VECTOR says; both push the VMCB RIP', () => {
    let m = run({ ...base, eventInj: inj(EVENT_TYPE.INTR, 0x30) });
    assert.equal(exitOf(m.vmcb).rip, BigInt(HANDLER));
    assert.equal(frame(m.cpu, exitOf(m.vmcb).rsp, false).rip, BigInt(GUEST_CODE));
    m = run({ gates: [gate(VEC.NMI, HANDLER)], eventInj: inj(EVENT_TYPE.NMI, 0x77) });
    assert.equal(exitOf(m.vmcb).code, EXIT.VMMCALL);
    assert.equal(exitOf(m.vmcb).rip, BigInt(HANDLER));
  });

  it('the injected event is not checked against the exception intercepts (injected #GP with #GP intercepted is delivered)', () => {
    const m = run({ ...base, excp: 1 << VEC.GP, eventInj: inj(EVENT_TYPE.EXCEPTION, VEC.GP, 0) });
    assert.equal(exitOf(m.vmcb).code, EXIT.VMMCALL);
  });
});

describe('model SVM: an injected INT n whose delivery is interrupted (15.7.2, 15.12, 15.25.6)', () => {
  const intn = inj(EVENT_TYPE.SOFT_INT, 0x80);
  const INTN_INFO = 0x8000_0480n; // V | TYPE 4 | vector 0x80, EV = 0

  it('#GP (gate not an interrupt/trap gate), #GP intercepted: exit 0x4D, EXITINFO1 = 0x80×8+2, EXITINTINFO = the INT n, next_rip 0, RIP = VMCB RIP', () => {
    const { vmcb } = run({ gates: [gate(0x80, HANDLER, { type: 0x3 })], excp: 1 << VEC.GP, eventInj: intn, nextRip: BigInt(GUEST_CODE + 2) });
    const e = exitOf(vmcb);
    assert.deepEqual([e.code, e.info1, e.intInfo, e.nextRip, e.rip], [EXIT.EXCP_GP, 0x402n, INTN_INFO, 0n, BigInt(GUEST_CODE)]);
  });

  it('#NP (gate not present), intercepted: EXITINFO1 = 0x402, EXITINTINFO = the INT n', () => {
    const { vmcb } = run({ gates: [gate(0x80, HANDLER, { present: false })], excp: 1 << VEC.NP, eventInj: intn, nextRip: BigInt(GUEST_CODE + 2) });
    const e = exitOf(vmcb);
    assert.deepEqual([e.code, e.info1, e.intInfo, e.nextRip], [EXIT.EXCP_NP, 0x402n, INTN_INFO, 0n]);
  });

  it('#PF on the IDT read (page not mapped), intercepted: EXITINFO1 = 0 (supervisor read, not present), EXITINFO2 = the gate\'s address, CR2 not written', () => {
    const idt = 0x4000_0000n; // beyond the 16 MiB the page tables map
    const { cpu, vmcb } = run({ idtBase: idt, excp: 1 << VEC.PF, eventInj: intn, nextRip: BigInt(GUEST_CODE + 2) });
    const e = exitOf(vmcb);
    assert.deepEqual([e.code, e.info1, e.info2, e.intInfo, e.nextRip], [EXIT.EXCP_PF, 0n, idt + 0x800n, INTN_INFO, 0n]);
    assert.equal(vmcb.u64(VMCB_SAVE.CR2), 0n);
    assert.equal(cpu.cr2, 0n);
  });

  it('#NPF on the IDT page: EXITINFO1 = 0x1_0000_0004 (final, user, read, not present), EXITINFO2 = GPA of the gate, EXITINTINFO = the INT n, next_rip 0', () => {
    const { vmcb } = run({
      gates: [gate(0x80, HANDLER)], eventInj: intn, nextRip: BigInt(GUEST_CODE + 2),
      nested: (mem) => mem.write64(NPT + 0x3000 + 8 * (GIDT >> 12), 0n),
    });
    const e = exitOf(vmcb);
    assert.deepEqual([e.code, e.info1, e.info2, e.intInfo, e.nextRip], [EXIT.NPF, 0x1_0000_0004n, BigInt(GIDT + 0x800), INTN_INFO, 0n]);
  });

  it('#NPF on the guest\'s own page-table walk: EXITINFO1 bit 33 with RW and US (a user write at the nested level), no event', () => {
    const { vmcb } = run({ nested: (mem) => mem.write64(NPT + 0x2000 + 8 * 1, 0n) }); // nested 2–4 MiB: the guest tables
    const e = exitOf(vmcb);
    assert.deepEqual([e.code, e.info1, e.info2, e.intInfo], [EXIT.NPF, 0x2_0000_0006n, BigInt(PT), 0n]);
  });

  it('a nested fault on an instruction\'s second page is held back when the instruction fits the first (fetch)', () => {
    // VMMCALL at the last three bytes of the page before an unmapped one
    const at = 0x44ffd;
    const m = machine({ guest: [], nested: (mem) => mem.write64(NPT + 0x3000 + 8 * 0x45, 0n) });
    m.cpu.mem.load(at, Uint8Array.from(VMMCALL));
    m.vmcb.set64(VMCB_SAVE.RIP, BigInt(at));
    step(m.cpu);
    step(m.cpu);
    assert.equal(exitOf(m.vmcb).code, EXIT.VMMCALL);
  });
});

describe('model SVM: intercepts (15.9–15.12)', () => {
  it('INT3 with #BP intercepted: exit 0x43 before delivery, RIP = the INT3, next_rip = after it, EXITINTINFO.V = 0', () => {
    const { vmcb } = run({ guest: [0x3e, 0xcc], excp: 1 << VEC.BP });
    const e = exitOf(vmcb);
    assert.deepEqual([e.code, e.rip, e.nextRip, e.intInfo], [EXIT.EXCP_BP, BigInt(GUEST_CODE), BigInt(GUEST_CODE + 2), 0n]);
  });

  it('INT 3 (CD 03) never hits the #BP intercept: its delivery\'s #GP is intercepted with EXITINTINFO TYPE 4', () => {
    const { vmcb } = run({ guest: [0xcd, 0x03], excp: (1 << VEC.BP) | (1 << VEC.GP) });
    const e = exitOf(vmcb);
    assert.deepEqual([e.code, e.info1, e.intInfo, e.nextRip, e.rip], [EXIT.EXCP_GP, 0x1an, 0x8000_0403n, 0n, BigInt(GUEST_CODE)]);
  });

  it('INT n intercept 0x75 comes first: EXITINFO1 = the vector with decode assists, 0 without; next_rip after the INT n', () => {
    let m = run({ guest: [0xcd, 0x80], misc1: 1 << INTERCEPT_MISC1.INTN, excp: 1 << VEC.GP, profile: svmProfile({ decodeAssists: true }) });
    assert.deepEqual([exitOf(m.vmcb).code, exitOf(m.vmcb).info1, exitOf(m.vmcb).nextRip], [EXIT.SWINT, 0x80n, BigInt(GUEST_CODE + 2)]);
    m = run({ guest: [0xcd, 0x80], misc1: 1 << INTERCEPT_MISC1.INTN });
    assert.equal(exitOf(m.vmcb).info1, 0n);
  });

  it('ICEBP exits with 0x88 (never the #DB intercept); without its intercept, #DB is delivered in the guest', () => {
    let m = run({ guest: [0xf1], misc2: 1 << INTERCEPT_MISC2.ICEBP, excp: 1 << VEC.DB });
    assert.deepEqual([exitOf(m.vmcb).code, exitOf(m.vmcb).nextRip], [EXIT.ICEBP, BigInt(GUEST_CODE + 1)]);
    m = run({ guest: [0xf1], excp: 1 << VEC.DB, gates: [gate(VEC.DB, HANDLER)] });
    assert.deepEqual([exitOf(m.vmcb).code, exitOf(m.vmcb).rip], [EXIT.VMMCALL, BigInt(HANDLER)]);
  });

  it('HLT (0x78) and the MSR intercept with the MSRPM (0x7C, EXITINFO1 = 1 for WRMSR; MSRs outside the map always exit)', () => {
    let m = run({ guest: [0xf4], misc1: 1 << INTERCEPT_MISC1.HLT });
    assert.deepEqual([exitOf(m.vmcb).code, exitOf(m.vmcb).nextRip], [EXIT.HLT, BigInt(GUEST_CODE + 1)]);
    // RCX = 0x40000000 (outside the three MSRPM ranges), WRMSR
    m = run({ guest: [0xb9, 0x00, 0x00, 0x00, 0x40, 0x0f, 0x30], misc1: 1 << INTERCEPT_MISC1.MSR });
    assert.deepEqual([exitOf(m.vmcb).code, exitOf(m.vmcb).info1, exitOf(m.vmcb).rip, exitOf(m.vmcb).nextRip], [EXIT.MSR, 1n, BigInt(GUEST_CODE + 5), BigInt(GUEST_CODE + 7)]);
  });

  it('IOIO with the IOPM: EXITINFO1 port/size/type, EXITINFO2 = next RIP (15.10.2)', () => {
    const m = machine({ guest: [0xe4, 0x71], misc1: 1 << INTERCEPT_MISC1.IOIO }); // in al, 0x71
    m.vmcb.set64(VMCB.IOPM_BASE, 0x110000n);
    m.cpu.mem.write8(0x110000 + (0x71 >> 3), 1 << (0x71 & 7));
    step(m.cpu);
    step(m.cpu);
    const e = exitOf(m.vmcb);
    // port 0x71 << 16 | SZ8 (bit 4) | A64 (bit 9) | IN (bit 0)
    assert.deepEqual([e.code, e.info1, e.info2], [EXIT.IOIO, 0x0071_0211n, BigInt(GUEST_CODE + 2)]);
  });

  it('an exception during delivery that is not intercepted becomes #DF; the #DF intercept then exits with EXITINTINFO = the first event', () => {
    // injected #GP(0) through a not-present gate → #NP (contributory on contributory) → #DF
    const { vmcb } = run({ gates: [gate(VEC.GP, HANDLER, { present: false })], excp: 1 << VEC.DF, eventInj: inj(EVENT_TYPE.EXCEPTION, VEC.GP, 0) });
    const e = exitOf(vmcb);
    assert.deepEqual([e.code, e.intInfo, e.nextRip], [EXIT.EXCP_DF, 0x0000_0000_8000_0b0dn, 0n]);
  });

  it('SHUTDOWN intercepted (0x7F) when a #DF cannot be delivered', () => {
    const { vmcb } = run({ misc1: 1 << INTERCEPT_MISC1.SHUTDOWN, eventInj: inj(EVENT_TYPE.EXCEPTION, VEC.GP, 0) });
    assert.equal(exitOf(vmcb).code, EXIT.SHUTDOWN);
  });
});

describe('model SVM: defined-bits masks (model/svm/masks.ts; docs/svm-rules.md "Defined bits per field")', () => {
  const sw = { nrips: true, decodeAssists: false };
  const u64 = { size: 8 };
  const ctx = (exitCode: bigint, exitIntInfo?: bigint, s = sw) => ({ exitCode, exitIntInfo, switches: s });
  const FULL = (1n << 64n) - 1n;

  it('EXITINFO2 is defined only for #PF, #NPF and IOIO', () => {
    assert.equal(fieldMask({ ...u64, role: 'exit_info_2' }, ctx(EXIT.EXCP_PF)), FULL);
    assert.equal(fieldMask({ ...u64, role: 'exit_info_2' }, ctx(EXIT.NPF)), FULL);
    assert.equal(fieldMask({ ...u64, role: 'exit_info_2' }, ctx(EXIT.EXCP_GP)), 0n);
    assert.equal(fieldMask({ ...u64, role: 'exit_info_2' }, ctx(EXIT.VMMCALL)), 0n);
  });

  it('#DF and #TS: EXITINFO1/2 and (#DF) the RIP undefined', () => {
    for (const code of [EXIT.EXCP_DF, EXIT.EXCP_TS]) {
      assert.equal(fieldMask({ ...u64, role: 'exit_info_1' }, ctx(code)), 0n);
      assert.equal(fieldMask({ ...u64, role: 'exit_info_2' }, ctx(code)), 0n);
    }
    assert.equal(fieldMask({ ...u64, role: 'vmcb_rip' }, ctx(EXIT.EXCP_DF)), 0n);
    assert.equal(fieldMask({ ...u64, role: 'vmcb_rip' }, ctx(EXIT.EXCP_TS)), FULL);
  });

  it('EXITINTINFO: V only when V = 0; the error code half only with EV; nothing after VMEXIT_INVALID', () => {
    assert.equal(fieldMask({ ...u64, role: 'exit_int_info' }, ctx(EXIT.VMMCALL, 0x420n)), 1n << 31n);
    assert.equal(fieldMask({ ...u64, role: 'exit_int_info' }, ctx(EXIT.EXCP_GP, 0x8000_0480n)), 0xffff_ffffn);
    assert.equal(fieldMask({ ...u64, role: 'exit_int_info' }, ctx(EXIT.EXCP_GP, 0x8000_0b0dn)), FULL);
    assert.equal(fieldMask({ ...u64, role: 'exit_int_info' }, ctx(EXIT.INVALID, 0x8000_0480n)), 0n);
  });

  it('next_rip: undefined without NRIPS, after VMEXIT_INVALID, and for #GP/#PF while delivering INT3\'s #BP', () => {
    assert.equal(fieldMask({ ...u64, role: 'next_rip' }, ctx(EXIT.VMMCALL)), FULL);
    assert.equal(fieldMask({ ...u64, role: 'next_rip' }, ctx(EXIT.VMMCALL, 0n, { nrips: false, decodeAssists: false })), 0n);
    assert.equal(fieldMask({ ...u64, role: 'next_rip' }, ctx(EXIT.INVALID)), 0n);
    assert.equal(fieldMask({ ...u64, role: 'next_rip' }, ctx(EXIT.EXCP_GP, 0x8000_0303n)), 0n);
    assert.equal(fieldMask({ ...u64, role: 'next_rip' }, ctx(EXIT.EXCP_GP, 0x8000_0403n)), FULL); // INT 3 (TYPE 4): defined (0)
  });

  it('the pushed RIP of a soft interrupt injected without NRIPS; int_state after an exit during injection; U/S of an IDT-read #PF from CPL 3', () => {
    assert.equal(fieldMask({ ...u64, role: 'injected_return_rip' }, ctx(EXIT.VMMCALL, 0n, { nrips: false, decodeAssists: false })), 0n);
    assert.equal(fieldMask({ ...u64, role: 'int_state' }, ctx(EXIT.EXCP_PF, 0x8000_0480n)), FULL & ~1n);
    assert.equal(fieldMask({ size: 4, role: 'idt_pf_error_code' }, ctx(EXIT.VMMCALL)), 0xffff_fffbn);
    assert.equal(fieldMask({ ...u64, definedWhen: 'nrips' }, ctx(EXIT.VMMCALL, 0n, { nrips: false, decodeAssists: false })), 0n);
  });

  it('recordMask reads the exit code and EXITINTINFO from the record; no mask when every bit is defined', () => {
    const fields = [
      { offset: 0, size: 8, role: 'exit_code' as const },
      { offset: 8, size: 8, role: 'exit_int_info' as const },
      { offset: 16, size: 8, role: 'event_inj' as const },
    ];
    const hex = (...v: bigint[]) => v.map((x) => Buffer.from(new BigUint64Array([x]).buffer).toString('hex')).join('');
    assert.equal(recordMask(fields, hex(EXIT.VMMCALL, 0x420n, 0n), sw), hex(FULL, 1n << 31n, FULL));
    assert.equal(recordMask(fields, hex(EXIT.EXCP_GP, 0x8000_0b0dn, 0n), sw), undefined);
  });
});
