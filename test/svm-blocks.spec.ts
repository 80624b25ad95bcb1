// The SVM building blocks of model/svm (vmcb, checks, npt, inject) against hand-built VMCBs and
// page tables in a PhysicalMemory. Every expectation is derived by hand from the AMD64 APM vol. 2
// (pub. 24593) chapter 15 and docs/svm-rules.md; the section is named next to it.

import assert from 'node:assert/strict';
import { ACC, Cpu } from '../model/cpu/cpu.ts';
import { ATTR, GPR, SEG, type Segment } from '../model/cpu/state.ts';
import { Fault, ModelStop } from '../model/cpu/fault.ts';
import { PhysicalMemory } from '../model/memory.ts';
import { setPhysAccess, translate } from '../model/paging.ts';
import { handlerFor } from '../model/isa/index.ts';
import { deliverEvent } from '../model/events/delivery.ts';
import { DEFAULT_PROFILE, PROFILES, type Profile } from '../model/profile.ts';
import { Vmcb, canonicalize, loadGuestState, loadHostState, saveGuestState, saveHostState } from '../model/svm/vmcb.ts';
import { INJECTABLE_EXCEPTIONS, eventInjectionCheck, svmFeatures, unspecifiedVmrun, vmrunCheck, type HostPaging } from '../model/svm/checks.ts';
import { NestedPageFault, NestedPaging, nestedContext } from '../model/svm/npt.ts';
import { ReservedEventType, exitIntInfoOf, injectedEvent } from '../model/svm/inject.ts';
import { CR0, CR4, RFLAGS, VEC } from '../arch/x86.ts';
import { PTE } from '../arch/paging.ts';
import {
  CPUID_EXT_ECX, CPUID_SVM_EDX, EFER, EVENTINJ, INTERCEPT_MISC2, NESTED_CTL, NPF_INFO, VMCB, VMCB_SAVE, makeEventInj,
} from '../arch/svm.ts';

// ---- profiles ------------------------------------------------------------------------------------------

/** The default profile plus SVM (Fn8000_0001 ECX[2]) and Fn8000_000A: revision 1, 0x8000 ASIDs, NP and (optionally) NRIPS. */
function svmProfile({ nrips = true, npt = true, longMode = true } = {}): Profile {
  const cpuid = { ...DEFAULT_PROFILE.cpuid };
  const ext = cpuid['0x80000001']!;
  cpuid['0x80000001'] = { ...ext, ecx: ext.ecx | (1 << CPUID_EXT_ECX.SVM), edx: longMode ? ext.edx : ext.edx & ~(1 << 29) };
  cpuid['0x8000000a'] = { eax: 1, ebx: 0x8000, ecx: 0, edx: (npt ? 1 << CPUID_SVM_EDX.NP : 0) | (nrips ? 1 << CPUID_SVM_EDX.NRIPS : 0) };
  return { ...DEFAULT_PROFILE, name: 'test-svm', cpuid };
}
const PROFILE = svmProfile();

function newCpu(mem = new PhysicalMemory(16 << 20)): Cpu {
  const cpu = new Cpu(mem, { translate, handlerFor, portIn: () => 0xff, portOut: () => {} });
  cpu.profile = PROFILE;
  return cpu;
}

// ---- a legal VMCB: a 64-bit guest at CPL 0 -------------------------------------------------------------------

const VMCB_PA = 0x100000;
const HSAVE_PA = 0x101000;
const CODE64 = ATTR.P | ATTR.S | ATTR.TYPE_CODE | ATTR.TYPE_RW | ATTR.TYPE_ACCESSED | ATTR.L; // 0x29b
const DATA = ATTR.P | ATTR.S | ATTR.TYPE_RW | ATTR.TYPE_ACCESSED; // 0x93
const seg = (selector: number, attrib: number, base = 0n, limit = 0xffff_ffff): Segment => ({ selector, attrib, base, limit });
const PAT_RESET = 0x0007_0406_0007_0406n; // APM vol. 2 7.8.2

function legalVmcb(mem = new PhysicalMemory(16 << 20)): Vmcb {
  const v = new Vmcb(mem, VMCB_PA);
  v.setControl({
    interceptMisc2: 1 << INTERCEPT_MISC2.VMRUN,
    asid: 1,
    iopmBase: 0x300000n,
    msrpmBase: 0x304000n,
  });
  v.setSave({
    es: seg(0x10, DATA), cs: seg(0x08, CODE64), ss: seg(0x10, DATA), ds: seg(0x10, DATA),
    gdtr: { base: 0x5000n, limit: 0x3f }, idtr: { base: 0x6000n, limit: 0xfff },
    cpl: 0,
    efer: EFER.SVME | EFER.LME | EFER.LMA | EFER.NXE,
    cr0: CR0.PE | CR0.ET | CR0.PG,
    cr3: 0x200000n,
    cr4: CR4.PAE,
    dr6: 0xffff_0ff0n,
    dr7: 0x400n,
    rflags: RFLAGS.FIXED1,
    rip: 0x40_1000n,
    rsp: 0x40_8000n,
    rax: 0x1234n,
    gPat: PAT_RESET,
  });
  return v;
}

const HOST: HostPaging = { cr0: CR0.PE | CR0.PG | CR0.ET, cr4: CR4.PAE, efer: EFER.SVME | EFER.LME | EFER.LMA | EFER.NXE };
const set64 = (v: Vmcb, off: number, f: (x: bigint) => bigint): void => v.set64(off, f(v.u64(off)));

// ---- vmcb.ts ------------------------------------------------------------------------------------------------------

describe('model/svm/vmcb: VMCB fields and the state VMRUN/#VMEXIT move (APM vol. 2 15.5.1, 15.6, appendix B)', () => {
  it('segments: {selector, attrib, limit, base} at the save-area offsets, bases canonicalized (15.5.1)', () => {
    const v = legalVmcb();
    v.setSegment(VMCB_SAVE.DS, seg(0x2b, DATA | (3 << ATTR.DPL_SHIFT), 0x0000_8000_0000_1000n, 0xfffff));
    assert.equal(v.u16(VMCB_SAVE.DS), 0x2b);
    assert.equal(v.u16(VMCB_SAVE.DS + 2), 0xf3);
    assert.equal(v.u32(VMCB_SAVE.DS + 4), 0xfffff);
    assert.equal(v.u64(VMCB_SAVE.DS + 8), 0x0000_8000_0000_1000n);
    // bit 47 set → sign-extended on load
    assert.deepEqual(v.segment(VMCB_SAVE.DS), seg(0x2b, 0xf3, 0xffff_8000_0000_1000n, 0xfffff));
    assert.equal(canonicalize(0x0000_7fff_ffff_f000n), 0x0000_7fff_ffff_f000n);
  });

  it('control area round trip and EVENTINJ parse (appendix B; 15.20)', () => {
    const v = legalVmcb();
    v.setControl({ exitCode: 0x400n, exitInfo1: 0x1_0000_0004n, nCr3: 0x40_0000n, eventInj: makeEventInj({ vector: 14, type: 3, ev: true, errorCode: 2 }) });
    const c = v.control();
    assert.equal(c.exitCode, 0x400n);
    assert.equal(v.u64(VMCB.EXIT_INFO_1), 0x1_0000_0004n);
    assert.equal(c.nCr3, 0x40_0000n);
    assert.equal(c.asid, 1);
    assert.equal(v.u64(VMCB.EVENT_INJ), 0x0000_0002_8000_0b0en);
    assert.deepEqual(v.eventInjInfo(), { valid: true, vector: 14, type: 3, ev: true, reserved: 0, errorCode: 2 });
  });

  it('loadGuestState loads exactly the VMRUN set, CPL from its field, INT_STATE shadow (15.5.1)', () => {
    const v = legalVmcb();
    v.setSave({ cpl: 3, cs: seg(0x33, CODE64 | (3 << ATTR.DPL_SHIFT)), cr2: 0xdead_b000n });
    v.interruptShadow = true;
    const cpu = newCpu(v.mem);
    cpu.seg[SEG.FS] = seg(0x99, DATA, 0x7777n);
    loadGuestState(cpu, v);
    assert.equal(cpu.cpl, 3);
    assert.equal(cpu.rip, 0x40_1000n);
    assert.equal(cpu.gpr[GPR.RSP], 0x40_8000n);
    assert.equal(cpu.gpr[GPR.RAX], 0x1234n);
    assert.equal(cpu.cr3, 0x200000n);
    assert.equal(cpu.cr2, 0xdead_b000n);
    assert.equal(cpu.efer, EFER.SVME | EFER.LME | EFER.LMA | EFER.NXE);
    assert.equal(cpu.dr[6], 0xffff_0ff0n);
    assert.equal(cpu.dr[7], 0x400n);
    assert.equal(cpu.seg[SEG.CS]!.selector, 0x33);
    assert.deepEqual(cpu.idtr, { base: 0x6000n, limit: 0xfff });
    assert.equal(cpu.interruptShadow, true);
    assert.equal(cpu.mode64, true);
    // FS is VMLOAD's (15.5.2), not VMRUN's
    assert.deepEqual(cpu.seg[SEG.FS], seg(0x99, DATA, 0x7777n));
  });

  it('CPL is forced to 0 in real mode and 3 in virtual-8086 mode (15.5.1)', () => {
    const v = legalVmcb();
    v.setSave({ cpl: 3, cr0: CR0.ET, efer: EFER.SVME });
    const cpu = newCpu(v.mem);
    loadGuestState(cpu, v);
    assert.equal(cpu.cpl, 0);
    v.setSave({ cpl: 0, cr0: CR0.PE | CR0.ET, rflags: RFLAGS.FIXED1 | RFLAGS.VM });
    loadGuestState(cpu, v);
    assert.equal(cpu.cpl, 3);
  });

  it('saveGuestState writes the same set back, CPL in its field (15.6)', () => {
    const v = legalVmcb();
    const cpu = newCpu(v.mem);
    loadGuestState(cpu, v);
    cpu.rip = 0x40_2000n;
    cpu.gpr[GPR.RSP] = 0x40_7ff0n;
    cpu.rflags = 0x246;
    cpu.cr2 = 0x1234_5000n;
    cpu.cpl = 3;
    cpu.interruptShadow = true;
    cpu.seg[SEG.SS] = seg(0x2b, DATA | (3 << ATTR.DPL_SHIFT));
    saveGuestState(cpu, v);
    const s = v.save();
    assert.equal(s.rip, 0x40_2000n);
    assert.equal(s.rsp, 0x40_7ff0n);
    assert.equal(s.rflags, 0x246n);
    assert.equal(s.cr2, 0x1234_5000n);
    assert.equal(s.cpl, 3);
    assert.equal(s.ss.selector, 0x2b);
    assert.equal(v.interruptShadow, true);
  });

  it('host state: VMRUN saves it, #VMEXIT reloads it with CR0.PE, CPL 0, VM clear, DR7 enables off; CR2 stays the guest\'s (15.5.1, 15.6, 15.25.2)', () => {
    const mem = new PhysicalMemory(16 << 20);
    const cpu = newCpu(mem);
    const hsave = new Vmcb(mem, HSAVE_PA);
    cpu.seg[SEG.CS] = seg(0x08, CODE64);
    cpu.seg[SEG.SS] = seg(0x10, DATA);
    cpu.gdtr = { base: 0x1000n, limit: 0x47 };
    cpu.idtr = { base: 0x2000n, limit: 0xfff };
    cpu.cr0 = CR0.PE | CR0.ET | CR0.PG;
    cpu.cr3 = 0x9000n;
    cpu.cr4 = CR4.PAE;
    cpu.efer = HOST.efer;
    cpu.rflags = 0x2 | 0x200;
    cpu.gpr[GPR.RSP] = 0x7000n;
    cpu.gpr[GPR.RAX] = BigInt(VMCB_PA);
    cpu.nextRip = 0x10_0003n; // the instruction after VMRUN (0f 01 d8)
    saveHostState(cpu, hsave);
    // the guest runs and changes everything
    loadGuestState(cpu, legalVmcb(mem));
    cpu.cr2 = 0xbad0_0000n;
    cpu.dr[7] = 0x403n; // L0, G0
    cpu.rflags |= Number(RFLAGS.VM);
    cpu.cpl = 3;
    loadHostState(cpu, hsave);
    assert.equal(cpu.rip, 0x10_0003n);
    assert.equal(cpu.gpr[GPR.RSP], 0x7000n);
    assert.equal(cpu.gpr[GPR.RAX], BigInt(VMCB_PA));
    assert.equal(cpu.cr3, 0x9000n);
    assert.equal(cpu.cpl, 0);
    assert.equal(cpu.rflags, 0x202);
    assert.deepEqual(cpu.gdtr, { base: 0x1000n, limit: 0x47 });
    assert.equal(cpu.seg[SEG.SS]!.attrib, DATA);
    assert.equal(cpu.dr[7], 0x400n);
    assert.equal(cpu.cr2, 0xbad0_0000n);
    // the host save area is the model's VMCB-layout choice
    assert.equal(hsave.u64(VMCB_SAVE.RIP), 0x10_0003n);
  });
});

// ---- checks.ts ----------------------------------------------------------------------------------------------------

describe('model/svm/checks: VMRUN consistency checks → VMEXIT_INVALID (APM vol. 2 15.5.1, 15.20, 15.25.4)', () => {
  it('the baseline VMCB is legal', () => {
    assert.equal(vmrunCheck(legalVmcb(), PROFILE, HOST), undefined);
  });

  it('every family profile accepts the baseline, with nested paging too; only 10h lacks NRIPS (15.25.12, 15.7.1)', () => {
    const v = legalVmcb();
    v.set64(VMCB.NESTED_CTL, 1n << BigInt(NESTED_CTL.NP_ENABLE_BIT));
    v.set64(VMCB.NCR3, 0x40_0000n);
    for (const p of PROFILES) {
      assert.equal(vmrunCheck(v, p, HOST), undefined, p.name);
      assert.equal(svmFeatures(p).nrips, p.name !== 'amd-10h', p.name);
    }
  });

  const S = VMCB_SAVE;
  const defects: [string, (v: Vmcb) => void, RegExp][] = [
    ['EFER.SVME clear (15.5.1)', (v) => set64(v, S.EFER, (x) => x & ~EFER.SVME), /SVME/],
    ['CR0.CD = 0 and CR0.NW = 1 (15.5.1)', (v) => set64(v, S.CR0, (x) => x | CR0.NW), /CR0.CD is zero and CR0.NW/],
    ['CR0 bit 32 (15.5.1 CR0[63:32])', (v) => set64(v, S.CR0, (x) => x | (1n << 32n)), /CR0\[63:32\]/],
    ['CR3 bit 52 in long mode (15.5.1; 3.1.2)', (v) => set64(v, S.CR3, (x) => x | (1n << 52n)), /CR3/],
    ['CR3 bit 48, above the 48-bit physical width (15.5.1; 3.1.2)', (v) => set64(v, S.CR3, (x) => x | (1n << 48n)), /CR3/],
    ['CR4 bit 11, absent from the profile (15.5.1; 3.1.3)', (v) => set64(v, S.CR4, (x) => x | (1n << 11n)), /CR4/],
    ['DR6 bit 32 (15.5.1)', (v) => set64(v, S.DR6, (x) => x | (1n << 32n)), /DR6/],
    ['DR7 bit 63 (15.5.1)', (v) => set64(v, S.DR7, (x) => x | (1n << 63n)), /DR7/],
    ['EFER bit 9, reserved (15.5.1; 3.1.7)', (v) => set64(v, S.EFER, (x) => x | (1n << 9n)), /EFER is set/],
    ['EFER bit 13 LMSLE, absent from the profile (15.5.1)', (v) => set64(v, S.EFER, (x) => x | (1n << 13n)), /EFER is set/],
    ['EFER.LME and CR0.PG with CR4.PAE = 0 (15.5.1)', (v) => set64(v, S.CR4, (x) => x & ~CR4.PAE), /CR4.PAE zero/],
    ['EFER.LME and CR0.PG with CR0.PE = 0 (15.5.1)', (v) => set64(v, S.CR0, (x) => x & ~CR0.PE), /CR0.PE zero/],
    ['EFER.LME, CR0.PG, CR4.PAE, CS.L and CS.D (15.5.1)', (v) => v.setSegment(S.CS, seg(0x08, CODE64 | ATTR.DB)), /CS.L and CS.D/],
    ['VMRUN intercept clear (15.5.1; Table 15-7)', (v) => v.set32(VMCB.INTERCEPT_MISC2, 0), /VMRUN intercept/],
    ['ASID 0 (15.5.1, 15.25.1)', (v) => v.set32(VMCB.ASID, 0), /ASID/],
    ['IOPM ending at 2^48 (15.10.1: 12 KiB, last byte ≥ max)', (v) => v.set64(VMCB.IOPM_BASE, (1n << 48n) - 0x2000n), /IOPM/],
    ['MSRPM ending at 2^48 (15.11: two pages)', (v) => v.set64(VMCB.MSRPM_BASE, (1n << 48n) - 0x1000n), /MSRPM/],
    ['EVENTINJ TYPE 1 (15.20 reserved)', (v) => v.setEventInj(makeEventInj({ vector: 0x20, type: 1 })), /TYPE 1 is reserved/],
    ['EVENTINJ TYPE 5 (15.20 reserved)', (v) => v.setEventInj(makeEventInj({ vector: 0x20, type: 5 })), /TYPE 5 is reserved/],
    ['EVENTINJ TYPE 6 (15.20 reserved)', (v) => v.setEventInj(makeEventInj({ vector: 0x20, type: 6 })), /TYPE 6 is reserved/],
    ['EVENTINJ TYPE 7 (15.20 reserved)', (v) => v.setEventInj(makeEventInj({ vector: 0x20, type: 7 })), /TYPE 7 is reserved/],
    ['EVENTINJ TYPE 3 vector 2, NMI (15.20)', (v) => v.setEventInj(makeEventInj({ vector: 2, type: 3 })), /vector 2, not an exception/],
    ['EVENTINJ TYPE 3 vector 0x20 (15.20)', (v) => v.setEventInj(makeEventInj({ vector: 0x20, type: 3 })), /not an exception/],
    ['EVENTINJ #BR into a 64-bit guest (15.20)', (v) => v.setEventInj(makeEventInj({ vector: VEC.BR, type: 3 })), /#BR into a 64-bit guest/],
  ];
  for (const [name, defect, want] of defects) {
    it(name, () => {
      const v = legalVmcb();
      defect(v);
      const why = vmrunCheck(v, PROFILE, HOST);
      assert.ok(why !== undefined, 'VMRUN must fail');
      assert.match(why, want);
    });
  }

  it('positive controls: CD = NW = 1, maps just below 2^48, a legal event, paged real mode without LME (15.5.1, 15.19)', () => {
    const legal: ((v: Vmcb) => void)[] = [
      (v) => set64(v, S.CR0, (x) => x | CR0.NW | CR0.CD),
      (v) => v.set64(VMCB.IOPM_BASE, (1n << 48n) - 0x3000n),
      (v) => v.set64(VMCB.MSRPM_BASE, (1n << 48n) - 0x2000n),
      (v) => v.set64(VMCB.IOPM_BASE, 0x300fffn), // low 12 bits ignored (15.10.1)
      (v) => v.setEventInj(makeEventInj({ vector: 0x80, type: 4 })),
      (v) => v.setEventInj(makeEventInj({ vector: 7, type: 7, valid: false })), // V = 0: ignored
      (v) => v.setEventInj(makeEventInj({ vector: 2, type: 0 })), // INTR vector 2: only TYPE 3 is restricted
      (v) => v.setEventInj(makeEventInj({ vector: 0x99, type: 2 })), // NMI: vector ignored
      (v) => v.setEventInj(makeEventInj({ vector: 5, type: 4 })), // INT 5 is legal in 64-bit mode
      (v) => v.setEventInj(makeEventInj({ vector: 13, type: 3 }) | (1n << 20n)), // bits 30:12: not checked (unspecified)
      (v) => v.setSave({ efer: EFER.SVME, cr0: CR0.PG | CR0.ET, cr4: 0n, cs: seg(0, DATA | ATTR.TYPE_CODE) }),
    ];
    legal.forEach((f, i) => {
      const v = legalVmcb();
      f(v);
      assert.equal(vmrunCheck(v, PROFILE, HOST), undefined, `control ${i}`);
    });
  });

  it('TYPE 3 accepts exactly the exception vectors of docs/svm-rules.md "Illegal event injection" (0, 1, 3–8, 10–14, 16–19, 28, 30)', () => {
    const accepted = [0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19, 28, 30];
    assert.deepEqual([...INJECTABLE_EXCEPTIONS].sort((a, b) => a - b), accepted);
    const v = legalVmcb();
    for (let vector = 0; vector < 256; vector++) {
      v.setSave({ cs: seg(0x08, ATTR.P | ATTR.S | ATTR.TYPE_CODE | ATTR.DB) }); // compatibility mode: #BR possible
      v.setEventInj(makeEventInj({ vector, type: 3 }));
      assert.equal(eventInjectionCheck(v) === undefined, accepted.includes(vector), `vector ${vector}`);
    }
  });

  it('#BR is legal into compatibility mode; #OF into 64-bit mode is accepted but reported unspecified (15.20; docs/svm-rules.md "Illegal event injection")', () => {
    const compat = legalVmcb();
    compat.setSave({ cs: seg(0x08, ATTR.P | ATTR.S | ATTR.TYPE_CODE | ATTR.DB) });
    compat.setEventInj(makeEventInj({ vector: VEC.BR, type: 3 }));
    assert.equal(vmrunCheck(compat, PROFILE, HOST), undefined);
    assert.equal(unspecifiedVmrun(compat, PROFILE), undefined);
    const of = legalVmcb();
    of.setEventInj(makeEventInj({ vector: VEC.OF, type: 3 }));
    assert.equal(vmrunCheck(of, PROFILE, HOST), undefined);
    assert.match(unspecifiedVmrun(of, PROFILE)!, /#OF into a 64-bit guest/);
  });

  it('TYPE 3 #CP and #VC on a part without shadow stacks or SEV-ES: refused, and reported unspecified (Table 8-1; docs/svm-rules.md "Open outcomes")', () => {
    for (const vector of [VEC.CP, VEC.VC]) {
      const v = legalVmcb();
      v.setEventInj(makeEventInj({ vector, type: 3 }));
      assert.match(vmrunCheck(v, PROFILE, HOST)!, /not an exception/);
      assert.match(unspecifiedVmrun(v, PROFILE)!, new RegExp(`vector ${vector} on a part without`));
    }
    const reserved = legalVmcb();
    reserved.setEventInj(makeEventInj({ vector: 15, type: 3 }));
    assert.equal(unspecifiedVmrun(reserved, PROFILE), undefined, 'a reserved vector is refused as defined, not open');
  });

  it('EFER.LME without long mode in the profile (15.5.1)', () => {
    assert.match(vmrunCheck(legalVmcb(), svmProfile({ longMode: false }), HOST)!, /long-mode support|EFER is set/);
  });

  it('nested paging: host CR0.PG = 0, nCR3 MBZ, G_PAT reserved type (15.25.3, 15.25.4)', () => {
    const np = (): Vmcb => {
      const v = legalVmcb();
      v.set64(VMCB.NESTED_CTL, 1n << BigInt(NESTED_CTL.NP_ENABLE_BIT));
      v.set64(VMCB.NCR3, 0x40_0000n);
      return v;
    };
    assert.equal(vmrunCheck(np(), PROFILE, HOST), undefined);
    assert.match(vmrunCheck(np(), PROFILE, { ...HOST, cr0: CR0.PE | CR0.ET })!, /host CR0.PG/);
    const bad = np();
    bad.set64(VMCB.NCR3, 0x40_0000n | (1n << 52n));
    assert.match(vmrunCheck(bad, PROFILE, HOST)!, /nCR3/);
    const pat = np();
    pat.set64(VMCB_SAVE.G_PAT, (PAT_RESET & ~(0xffn << 16n)) | (2n << 16n)); // PA2 = 2: reserved (7.8.1)
    assert.match(vmrunCheck(pat, PROFILE, HOST)!, /G_PAT.PA2/);
    // without NP in the profile the bit is ignored (decision, checks.ts header)
    assert.equal(vmrunCheck(pat, svmProfile({ npt: false }), HOST), undefined);
  });

  it('a legacy-PAE guest without NP: reserved bits in a present PDPE (15.5.1)', () => {
    const v = legalVmcb();
    v.setSave({ efer: EFER.SVME, cs: seg(0x08, ATTR.P | ATTR.S | ATTR.TYPE_CODE | ATTR.DB), cr3: 0x21_0000n });
    v.mem.write64(0x21_0000 + 8, 0x30_0000n | 1n);
    assert.equal(vmrunCheck(v, PROFILE, HOST), undefined);
    v.mem.write64(0x21_0000 + 8, 0x30_0000n | 1n | 2n); // bit 1 reserved in a legacy PDPE (5.3.2)
    assert.match(vmrunCheck(v, PROFILE, HOST)!, /PDPE1/);
    v.set64(VMCB.NESTED_CTL, 1n);
    v.set64(VMCB.NCR3, 0x40_0000n);
    assert.equal(vmrunCheck(v, PROFILE, HOST), undefined, 'with NP the PDPEs are read on demand (15.25.10)');
  });
});

// ---- npt.ts -----------------------------------------------------------------------------------------------------------

// System-physical layout: nested tables at 0x40_0000 (PML4), 0x40_1000 (PDPT), 0x40_2000 (PD),
// 0x40_3000 (PT) mapping guest-physical page n (n < 512) to system-physical 0x80_0000 + n·4 KiB.
// Guest tables in guest-physical memory: PML4 0x10000, PDPT 0x11000, PD 0x12000, PT 0x13000;
// linear 0x0000_7f80_4020_3000 = PML4[0xff] PDPT[1] PD[1] PT[3] → guest frame 0x50000.
const NPML4 = 0x40_0000, NPDPT = 0x40_1000, NPD = 0x40_2000, NPT = 0x40_3000;
const SPA = (gpa: number): number => 0x80_0000 + gpa;
const GPML4 = 0x10000, GPDPT = 0x11000, GPD = 0x12000, GPT = 0x13000;
const LIN = 0x0000_7f80_4020_3000n;
const GFRAME = 0x50000;
const RWU = PTE.P | PTE.W | PTE.US;

function nestedSetup(): { cpu: Cpu; npt: NestedPaging } {
  const mem = new PhysicalMemory(16 << 20);
  mem.write64(NPML4, BigInt(NPDPT) | RWU);
  mem.write64(NPDPT, BigInt(NPD) | RWU);
  mem.write64(NPD, BigInt(NPT) | RWU);
  for (let n = 0; n < 512; n++) mem.write64(NPT + 8 * n, BigInt(SPA(n * 4096)) | RWU);
  // guest tables, written at their system-physical homes
  mem.write64(SPA(GPML4) + 0xff * 8, BigInt(GPDPT) | RWU);
  mem.write64(SPA(GPDPT) + 1 * 8, BigInt(GPD) | RWU);
  mem.write64(SPA(GPD) + 1 * 8, BigInt(GPT) | RWU);
  mem.write64(SPA(GPT) + 3 * 8, BigInt(GFRAME) | RWU);
  mem.write64(SPA(GPT) + 4 * 8, 0x60000n | RWU); // linear LIN + 0x1000 → guest-physical 0x60000
  const cpu = newCpu(mem);
  cpu.cr0 = CR0.PE | CR0.ET | CR0.PG | CR0.WP;
  cpu.cr4 = CR4.PAE;
  cpu.efer = EFER.SVME | EFER.LME | EFER.LMA | EFER.NXE;
  cpu.cr3 = BigInt(GPML4);
  cpu.seg[SEG.CS] = seg(0x08, CODE64);
  const npt = new NestedPaging(mem, nestedContext(BigInt(NPML4), { efer: HOST.efer }, PROFILE));
  setPhysAccess(cpu, npt);
  return { cpu, npt };
}

const nptEntry = (cpu: Cpu, gpa: number): bigint => cpu.mem.read64(NPT + 8 * (gpa >>> 12));
const setNpt = (cpu: Cpu, gpa: number, f: (e: bigint) => bigint): void => cpu.mem.write64(NPT + 8 * (gpa >>> 12), f(nptEntry(cpu, gpa)));

function npf(f: () => unknown): NestedPageFault {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof NestedPageFault, `expected #NPF, got ${String(e)}`);
    return e;
  }
  assert.fail('no #NPF');
}

describe('model/svm/npt: nested paging (APM vol. 2 15.25.5–15.25.6)', () => {
  it('translates the guest walk and the final address through the nested tables', () => {
    const { cpu } = nestedSetup();
    assert.equal(translate(cpu, LIN + 0x123n, ACC.READ), SPA(GFRAME) + 0x123);
    // guest A bits were written through the nested mapping (5.4.2), at the system-physical homes
    assert.equal(cpu.mem.read64(SPA(GPT) + 24) & PTE.A, PTE.A);
  });

  it('nested A and D: guest-table pages are user writes (A|D), the final read page gets A only (15.25.5)', () => {
    const { cpu } = nestedSetup();
    translate(cpu, LIN, ACC.READ);
    for (const g of [GPML4, GPDPT, GPD, GPT]) assert.equal(nptEntry(cpu, g) & (PTE.A | PTE.D), PTE.A | PTE.D, `nested entry of 0x${g.toString(16)}`);
    assert.equal(nptEntry(cpu, GFRAME) & (PTE.A | PTE.D), PTE.A);
    for (const a of [NPML4, NPDPT, NPD]) assert.equal(cpu.mem.read64(a) & (PTE.A | PTE.D), PTE.A, 'upper nested levels: A only');
    // a later write to the same final page sets its D, although the read cached it
    translate(cpu, LIN, ACC.WRITE);
    assert.equal(nptEntry(cpu, GFRAME) & PTE.D, PTE.D);
  });

  it('not-present nested entry on a guest walk: EXITINFO1 = 0x2_0000_0006, EXITINFO2 = the PDPT entry\'s GPA', () => {
    // walk access = user write (15.25.5): P=0, RW=1 (2), US=1 (4), bit 33 → 0x2_0000_0006;
    // the PDPT entry read is at GPDPT + 1·8 = 0x11008 (linear bits 38:30 = 1)
    const { cpu } = nestedSetup();
    setNpt(cpu, GPDPT, () => 0n);
    const f = npf(() => translate(cpu, LIN, ACC.READ));
    assert.equal(f.exitInfo1, 0x2_0000_0006n);
    assert.equal(f.exitInfo1, NPF_INFO.WALK | NPF_INFO.RW | NPF_INFO.US);
    assert.equal(f.exitInfo2, 0x11008n);
    assert.equal(f.during, undefined);
  });

  it('read-only nested page holding a guest table: 0x2_0000_0007 (P, RW, US, walk), even for a guest read', () => {
    const { cpu } = nestedSetup();
    setNpt(cpu, GPD, (e) => e & ~PTE.W);
    const f = npf(() => translate(cpu, LIN, ACC.READ));
    assert.equal(f.exitInfo1, 0x2_0000_0007n);
    assert.equal(f.exitInfo2, BigInt(GPD + 8));
  });

  it('reserved bit in a nested entry on the walk: 0x2_0000_000f (P, RW, US, RSV, walk)', () => {
    const { cpu } = nestedSetup();
    setNpt(cpu, GPML4, (e) => e | (1n << 50n)); // above the 48-bit physical width (5.3.1)
    const f = npf(() => translate(cpu, LIN, ACC.READ));
    assert.equal(f.exitInfo1, 0x2_0000_000fn);
    assert.equal(f.exitInfo2, BigInt(GPML4 + 0xff * 8));
  });

  it('a nested fault on a walk entry comes before the guest #PF of that level (15.25.6 steps 1–2)', () => {
    const { cpu } = nestedSetup();
    cpu.mem.write64(SPA(GPD) + 8, 0n); // guest PDE not present
    setNpt(cpu, GPD, () => 0n); // and its page not present in the nested tables
    const f = npf(() => translate(cpu, LIN, ACC.READ));
    assert.equal(f.exitInfo2, BigInt(GPD + 8));
    setNpt(cpu, GPD, () => BigInt(SPA(GPD)) | RWU); // nested fixed: now the guest #PF
    assert.throws(() => translate(cpu, LIN, ACC.READ), (e) => e instanceof Fault && e.vector === VEC.PF && e.errorCode === 0);
  });

  it('guest permission faults come before the final nested walk (15.25.6 steps 3–4)', () => {
    const { cpu } = nestedSetup();
    cpu.mem.write64(SPA(GPT) + 24, BigInt(GFRAME) | PTE.P | PTE.US); // guest read-only
    setNpt(cpu, GFRAME, () => 0n);
    assert.throws(() => translate(cpu, LIN, ACC.WRITE), (e) => e instanceof Fault && e.vector === VEC.PF && e.errorCode === 3);
  });

  it('IDT gate read of a page not present in the nested tables: 0x1_0000_0004, exact GPA, the event captured (docs/svm-rules.md "Nested page faults" example)', () => {
    // the IDT lives at linear LIN + 0x1000 → guest-physical 0x60000; INT 0x80 reads the gate at
    // +0x80·16 = 0x800 (8.9.1), a supervisor data read; at the nested level a user read of the final
    // address: P=0, RW=0, US=1, bit 32 → 0x1_0000_0004; EXITINFO2 = 0x60800
    const { cpu } = nestedSetup();
    setNpt(cpu, 0x60000, () => 0n);
    cpu.idtr = { base: LIN + 0x1000n, limit: 0xfff };
    const inj = injectedEvent(makeEventInj({ vector: 0x80, type: 4 }), { rip: 0x1000n, nextRip: 0x1002n, nrips: true })!;
    const f = npf(() => deliverEvent(cpu, inj.event));
    assert.equal(f.exitInfo1, 0x1_0000_0004n);
    assert.equal(f.exitInfo1, NPF_INFO.FINAL | NPF_INFO.US);
    assert.equal(f.exitInfo2, 0x60800n);
    assert.equal(f.during, inj.event);
    assert.equal(exitIntInfoOf(f.during!), 0x8000_0480n); // V, TYPE 4, vector 0x80 (15.7.2)
  });

  it('final-access kinds: write to a read-only nested page 0x1_0000_0007, fetch from an NX page 0x1_0000_0015, fetch not present 0x1_0000_0014', () => {
    const { cpu } = nestedSetup();
    setNpt(cpu, GFRAME, (e) => e & ~PTE.W);
    assert.equal(npf(() => translate(cpu, LIN + 8n, ACC.WRITE)).exitInfo1, 0x1_0000_0007n);
    setNpt(cpu, GFRAME, (e) => e | PTE.W | PTE.NX);
    const nx = npf(() => translate(cpu, LIN + 0x10n, ACC.FETCH));
    assert.equal(nx.exitInfo1, 0x1_0000_0015n);
    assert.equal(nx.exitInfo2, BigInt(GFRAME + 0x10));
    setNpt(cpu, GFRAME, () => 0n);
    assert.equal(npf(() => translate(cpu, LIN, ACC.FETCH)).exitInfo1, 0x1_0000_0014n);
  });

  it('every nested access is a user access: a supervisor nested page faults a supervisor guest read (0x1_0000_0005)', () => {
    const { cpu } = nestedSetup();
    setNpt(cpu, GFRAME, (e) => e & ~PTE.US);
    assert.equal(npf(() => translate(cpu, LIN, ACC.READ)).exitInfo1, 0x1_0000_0005n);
  });

  it('a faulting nested walk leaves the nested A/D bits as they were', () => {
    const { cpu } = nestedSetup();
    setNpt(cpu, GFRAME, (e) => e & ~PTE.W);
    npf(() => translate(cpu, LIN, ACC.WRITE));
    assert.equal(nptEntry(cpu, GFRAME) & (PTE.A | PTE.D), 0n);
  });

  it('guest paging off: the linear address is the GPA, still translated by the nested tables (15.25.5)', () => {
    const { cpu } = nestedSetup();
    cpu.cr0 = CR0.PE | CR0.ET;
    cpu.efer = EFER.SVME;
    assert.equal(translate(cpu, 0x7123n, ACC.READ), SPA(0x7123));
    setNpt(cpu, 0x8000, () => 0n);
    const f = npf(() => translate(cpu, 0x8010n, ACC.WRITE));
    assert.equal(f.exitInfo1, 0x1_0000_0006n); // P=0, RW, US, final
    assert.equal(f.exitInfo2, 0x8010n);
  });

  it('a host outside long mode: legacy nested walks are not modelled (ModelStop, 15.25.3)', () => {
    assert.throws(() => nestedContext(0x40_0000n, { efer: EFER.SVME }, PROFILE), ModelStop);
  });

  it('flush() drops cached nested translations', () => {
    const { cpu, npt } = nestedSetup();
    cpu.cr0 = CR0.PE | CR0.ET;
    cpu.efer = EFER.SVME;
    assert.equal(translate(cpu, 0x7123n, ACC.READ), SPA(0x7123));
    setNpt(cpu, 0x7000, () => 0n);
    assert.equal(translate(cpu, 0x7123n, ACC.READ), SPA(0x7123), 'cached, as a TLB would');
    npt.flush();
    const f = npf(() => translate(cpu, 0x7123n, ACC.READ));
    assert.equal(f.exitInfo1, 0x1_0000_0004n);
    assert.equal(f.exitInfo2, 0x7123n);
  });
});

// ---- inject.ts ---------------------------------------------------------------------------------------------------

describe('model/svm/inject: EVENTINJ → event, and EXITINTINFO (APM vol. 2 15.20, 15.7.2)', () => {
  const ctx = { rip: 0x40_1000n, nextRip: 0x40_1002n, nrips: true };
  const noNrips = { ...ctx, nrips: false };
  const inj = (vector: number, type: number, ev = false, errorCode?: number, c = ctx) => {
    const e: Parameters<typeof makeEventInj>[0] = { vector, type, ev };
    if (errorCode !== undefined) e.errorCode = errorCode;
    return injectedEvent(makeEventInj(e), c)!;
  };

  it('V = 0: nothing is injected', () => {
    assert.equal(injectedEvent(makeEventInj({ vector: 3, type: 3, valid: false }), ctx), undefined);
  });

  it('TYPE 0: an external interrupt at the VMCB RIP; error code iff EV', () => {
    assert.deepEqual(inj(0x20, 0), { event: { vector: 0x20, kind: 'external', returnRip: 0x40_1000n }, returnRipUnspecified: false });
    assert.equal(inj(0x20, 0, true, 0x55).event.errorCode, 0x55);
  });

  it('TYPE 2: NMI, vector ignored → 2 (15.20)', () => {
    assert.deepEqual(inj(0x99, 2).event, { vector: 2, kind: 'nmi', returnRip: 0x40_1000n });
    assert.equal(inj(0x99, 2, true, 0).event.errorCode, 0);
  });

  it('TYPE 3 vectors 3 and 4: trap semantics, return address next_rip with NRIPS (15.20)', () => {
    for (const vector of [VEC.BP, VEC.OF]) {
      assert.deepEqual(inj(vector, 3), { event: { vector, kind: 'softexception', returnRip: 0x40_1002n, insnRip: 0x40_1000n }, returnRipUnspecified: false });
      // without NRIPS: the VMCB RIP, and unspecified (15.20 "cannot be properly injected")
      assert.deepEqual(inj(vector, 3, false, undefined, noNrips), { event: { vector, kind: 'softexception', returnRip: 0x40_1000n, insnRip: 0x40_1000n }, returnRipUnspecified: true });
      assert.equal(inj(vector, 3, true, 7).event.errorCode, 7);
    }
  });

  it('TYPE 3 vector 1: a plain #DB, no trap semantics, VMCB RIP (ICEBP cannot be injected, 15.20)', () => {
    assert.deepEqual(inj(VEC.DB, 3), { event: { vector: 1, kind: 'exception', returnRip: 0x40_1000n }, returnRipUnspecified: false });
  });

  it('TYPE 3 other vectors: exceptions; the error code iff EV, whatever the vector (15.20)', () => {
    assert.deepEqual(inj(VEC.GP, 3, true, 0x10).event, { vector: 13, kind: 'exception', returnRip: 0x40_1000n, errorCode: 0x10 });
    assert.deepEqual(inj(VEC.GP, 3).event, { vector: 13, kind: 'exception', returnRip: 0x40_1000n });
    assert.equal(inj(VEC.UD, 3, true, 0xffff_ffff).event.errorCode, 0xffff_ffff);
    assert.equal(inj(VEC.PF, 3, true, 2).event.cr2, undefined, 'injection does not write CR2');
  });

  it('TYPE 4: INT n, return address next_rip with NRIPS, unspecified without', () => {
    assert.deepEqual(inj(0x80, 4), { event: { vector: 0x80, kind: 'softint', returnRip: 0x40_1002n, insnRip: 0x40_1000n }, returnRipUnspecified: false });
    assert.equal(inj(0x80, 4, false, undefined, noNrips).returnRipUnspecified, true);
    assert.equal(inj(0x80, 4, false, undefined, noNrips).event.returnRip, 0x40_1000n);
    assert.equal(inj(3, 4, true, 9).event.errorCode, 9);
  });

  it('reserved TYPEs throw (VMRUN must have failed first)', () => {
    for (const type of [1, 5, 6, 7]) assert.throws(() => inj(0x20, type), ReservedEventType);
  });

  it('EXITINTINFO: INT3/INTO/BOUND/ICEBP are TYPE 3, INT n TYPE 4, INTR 0, NMI 2 (15.7.2)', () => {
    assert.equal(exitIntInfoOf({ vector: 3, kind: 'softexception' }), 0x8000_0303n);
    assert.equal(exitIntInfoOf({ vector: 4, kind: 'softexception' }), 0x8000_0304n);
    assert.equal(exitIntInfoOf({ vector: 5, kind: 'exception' }), 0x8000_0305n);
    assert.equal(exitIntInfoOf({ vector: 1, kind: 'icebp' }), 0x8000_0301n);
    assert.equal(exitIntInfoOf({ vector: 3, kind: 'softint' }), 0x8000_0403n);
    assert.equal(exitIntInfoOf({ vector: 0x20, kind: 'external' }), 0x8000_0020n);
    assert.equal(exitIntInfoOf({ vector: 2, kind: 'nmi' }), 0x8000_0202n);
    assert.equal(exitIntInfoOf({ vector: 13, kind: 'exception', errorCode: 0x10 }), 0x0000_0010_8000_0b0dn);
    assert.equal(exitIntInfoOf({ vector: 14, kind: 'exception', errorCode: 0 }), 0x8000_0b0en);
    assert.equal(exitIntInfoOf({ vector: 8, kind: 'exception' }, 0), 0x8000_0b08n, 'explicit error code');
  });

  it('EVENTINJ → event → EXITINTINFO reproduces the EVENTINJ value (the encodings match, 15.20)', () => {
    for (const [vector, type] of [[0x20, 0], [2, 2], [3, 3], [4, 3], [1, 3], [14, 3], [0x80, 4], [3, 4]] as const) {
      for (const ev of [false, true]) {
        const value = makeEventInj({ vector, type, ev, errorCode: ev ? 0x1234 : 0 });
        assert.equal(exitIntInfoOf(injectedEvent(value, ctx)!.event), value, `vector ${vector} type ${type} ev ${ev}`);
      }
    }
    assert.equal(EVENTINJ.V, 1n << 31n);
  });
});
