// Event delivery and the instructions that raise and return from events (model/events,
// model/isa/interrupts.ts). Every expectation is derived by hand from the AMD64 APM; the section
// is named next to it. The harness builds descriptor tables and code in a PhysicalMemory, with an
// identity `translate` that raises #PF on pages the test marks not present.

import assert from 'node:assert/strict';
import { Cpu, ACC, EFER_LMA, EFER_LME, CR0_PE, CR0_PG } from '../model/cpu/cpu.ts';
import { ATTR, GPR, SEG } from '../model/cpu/state.ts';
import { Fault, Shutdown } from '../model/cpu/fault.ts';
import { F } from '../model/cpu/flags.ts';
import { PhysicalMemory } from '../model/memory.ts';
import { handlerFor } from '../model/isa/index.ts';
import { step } from '../model/events/boundary.ts';
import { deliverEvent } from '../model/events/delivery.ts';
import { combine, type Event } from '../model/events/classes.ts';
import { VEC } from '../arch/x86.ts';

// ---- layout ---------------------------------------------------------------------------------
const GDT = 0x1000;
const IDT = 0x2000;
const TSS = 0x3000;
const CODE = 0x10000;
const HANDLERS = 0x20000; // handler of vector v at HANDLERS + 16 v
const STACK0 = 0x8000; // CPL-0 stack top
const RSP0 = 0x9000; // TSS.RSP0 / ESP0
const IST1 = 0xa008; // deliberately not 16-byte aligned
const USER_STACK = 0x7000;
const BOUNDS = 0x5000;
const UNMAPPED = 0x40000; // the harness's translate faults on this page

const SEL = { CODE64: 0x08, DATA: 0x10, CODE32: 0x18, UCODE64: 0x23, UDATA: 0x2b, TSS: 0x30, UCODE32: 0x3b } as const;

/** A code/data descriptor (APM vol. 2 4.7): type 4 bits, S=1, P=1, G=1 with limit 0xfffff. */
function desc(type: number, dpl: number, l = 0, db = 1): bigint {
  const limit = 0xfffffn;
  return (limit & 0xffffn) | (BigInt(type | 0x10 | (dpl << 5) | 0x80) << 40n) | (((limit >> 16n) & 0xfn) << 48n) | (BigInt((l << 1) | (db << 2) | 8) << 52n);
}

interface GateOpts { type?: number; dpl?: number; present?: boolean; ist?: number; sel?: number; offset?: number }

function harness(mode: 'long' | 'legacy') {
  const mem = new PhysicalMemory(1 << 20);
  const notPresent = new Set<number>([UNMAPPED >> 12]);
  const cpu = new Cpu(mem, {
    translate(_cpu, linear, access) {
      if (notPresent.has(Number(linear >> 12n))) {
        const code = (access & ACC.WRITE ? 2 : 0) | (access & ACC.USER ? 4 : 0) | (access & ACC.FETCH ? 16 : 0);
        throw new Fault(VEC.PF, code, linear);
      }
      return Number(linear & 0xffff_ffffn);
    },
    handlerFor,
    portIn: () => 0xffffffff,
    portOut: () => {},
  });
  // GDT: null, 64-bit code, data, 32-bit code (compatibility mode / legacy), user 64-bit code, user data, TSS, user 32-bit code
  const long = mode === 'long';
  mem.write64(GDT + 0x08, desc(0xb, 0, long ? 1 : 0, long ? 0 : 1));
  mem.write64(GDT + 0x10, desc(0x3, 0));
  mem.write64(GDT + 0x18, desc(0xb, 0, 0, 1));
  mem.write64(GDT + 0x20, desc(0xb, 3, long ? 1 : 0, long ? 0 : 1));
  mem.write64(GDT + 0x28, desc(0x3, 3));
  mem.write64(GDT + 0x38, desc(0xb, 3, 0, 1));
  cpu.gdtr = { base: BigInt(GDT), limit: 0x3f };
  cpu.idtr = { base: BigInt(IDT), limit: long ? 256 * 16 - 1 : 256 * 8 - 1 };
  // TSS: 64-bit RSP0 at +4, IST1 at +0x24; 32-bit ESP0 at +4, SS0 at +8
  if (long) {
    mem.write64(TSS + 4, BigInt(RSP0));
    mem.write64(TSS + 0x24, BigInt(IST1));
  } else {
    mem.write32(TSS + 4, RSP0);
    mem.write16(TSS + 8, SEL.DATA);
  }
  cpu.tr = { selector: SEL.TSS, base: BigInt(TSS), limit: 0x67, attrib: 0x8b };
  const setSeg = (i: number, sel: number) => {
    const d = mem.read64(GDT + (sel & ~7));
    cpu.seg[i] = { selector: sel, base: 0n, limit: 0xffff_ffff, attrib: Number((d >> 40n) & 0xffn) | (Number((d >> 52n) & 0xfn) << 8) };
  };
  for (const i of [SEG.ES, SEG.SS, SEG.DS, SEG.FS, SEG.GS]) setSeg(i, SEL.DATA);
  setSeg(SEG.CS, SEL.CODE64);
  cpu.cr0 = CR0_PE | (long ? CR0_PG : 0n);
  cpu.efer = long ? EFER_LME | EFER_LMA : 0n;
  cpu.cpl = 0;
  cpu.rflags = 0x2 | F.IF;
  cpu.gpr[GPR.RSP] = BigInt(STACK0);
  cpu.rip = BigInt(CODE);

  const gate = (v: number, o: GateOpts = {}) => {
    const offset = BigInt(o.offset ?? HANDLERS + 16 * v);
    const type = o.type ?? 0xe;
    const attr = BigInt(type | ((o.dpl ?? 0) << 5) | (o.present === false ? 0 : 0x80));
    const sel = BigInt(o.sel ?? SEL.CODE64);
    if (long) {
      const low = (offset & 0xffffn) | (sel << 16n) | (BigInt(o.ist ?? 0) << 32n) | (attr << 40n) | (((offset >> 16n) & 0xffffn) << 48n);
      mem.write64(IDT + 16 * v, low);
      mem.write64(IDT + 16 * v + 8, offset >> 32n);
    } else {
      mem.write64(IDT + 8 * v, (offset & 0xffffn) | (sel << 16n) | (attr << 40n) | (((offset >> 16n) & 0xffffn) << 48n));
    }
  };
  for (let v = 0; v < 256; v++) gate(v);

  return {
    mem,
    cpu,
    gate,
    notPresent,
    setSeg,
    code(bytes: number[], at = CODE) {
      mem.load(at, Uint8Array.from(bytes));
      cpu.flushDecodeCache();
    },
    /** The handler the CPU is about to run, as a vector. */
    vector(): number {
      return Number(cpu.rip - BigInt(HANDLERS)) / 16;
    },
    /** Frame quadwords (64-bit) or dwords (legacy) from RSP upwards. */
    frame(n: number, size = 8): bigint[] {
      const rsp = Number(cpu.gpr[GPR.RSP]!);
      return Array.from({ length: n }, (_, i) => mem.read(rsp + size * i, size));
    },
    toUser64() {
      setSeg(SEG.CS, SEL.UCODE64);
      setSeg(SEG.SS, SEL.UDATA);
      cpu.cpl = 3;
      cpu.gpr[GPR.RSP] = BigInt(USER_STACK);
    },
    toCompat() {
      setSeg(SEG.CS, SEL.CODE32);
    },
  };
}

const RF = BigInt(F.RF);

describe('model events: long-mode delivery (APM vol. 2 8.9)', () => {
  it('INT n with a DS prefix: 64-bit frame SS, RSP, RFLAGS, CS, RIP after the prefix, no error code (8.9.3)', () => {
    const h = harness('long');
    h.cpu.gpr[GPR.RSP] = BigInt(STACK0 + 8); // not aligned: delivery aligns down to 16 (8.9.3)
    h.code([0x3e, 0xcd, 0x80]);
    step(h.cpu);
    assert.equal(h.vector(), 0x80);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(STACK0 - 40), 'aligned to 0x8000, then five quadwords');
    const [rip, cs, rflags, rsp, ss] = h.frame(5);
    assert.equal(rip, BigInt(CODE + 3), 'trap: the next instruction, prefix included (vol. 3 INT)');
    assert.equal(cs, BigInt(SEL.CODE64));
    assert.equal(rflags, BigInt(0x2 | F.IF), 'INT n is not a fault: RF as it was (0)');
    assert.equal(rsp, BigInt(STACK0 + 8), 'the RSP before alignment');
    assert.equal(ss, BigInt(SEL.DATA));
    assert.equal(h.cpu.rflags & F.IF, 0, 'interrupt gate clears IF');
    assert.equal(h.cpu.delivering, undefined);
  });

  it('INT3 (cc, 3e cc) and INT 3 (cd 03) push the next RIP and are different event kinds', () => {
    for (const [bytes, kind] of [[[0xcc], 'softexception'], [[0x3e, 0xcc], 'softexception'], [[0xcd, 0x03], 'softint'], [[0x3e, 0xcd, 0x03], 'softint']] as const) {
      const h = harness('long');
      const seen: Event[] = [];
      h.cpu.eventHooks = { beforeDeliver: (_c, e) => (seen.push(e), false) };
      h.code([...bytes]);
      step(h.cpu);
      assert.equal(h.vector(), VEC.BP);
      assert.equal(h.frame(1)[0], BigInt(CODE + bytes.length), `pushed RIP for ${bytes}`);
      assert.equal(seen[0]!.kind, kind);
      assert.equal(seen[0]!.insnRip, BigInt(CODE));
    }
  });

  it('ICEBP (f1, 3e f1): #DB trap, RIP after the instruction, DR6 unchanged', () => {
    const h = harness('long');
    h.cpu.dr[6] = 0xffff0ff0n;
    h.code([0x3e, 0xf1]);
    step(h.cpu);
    assert.equal(h.vector(), VEC.DB);
    assert.equal(h.frame(1)[0], BigInt(CODE + 2));
    assert.equal(h.cpu.dr[6], 0xffff0ff0n);
  });

  it('#PF on a code fetch: error code pushed (48-byte frame), RIP = the faulting address, CR2 written, RF=1 pushed (8.4.2, 3.1.6)', () => {
    const h = harness('long');
    h.cpu.rip = BigInt(UNMAPPED + 0x10);
    step(h.cpu);
    assert.equal(h.vector(), VEC.PF);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(STACK0 - 48));
    const [err, rip, cs, rflags] = h.frame(4);
    assert.equal(err, 0x10n, 'I/D set, not present, supervisor read (the harness translate)');
    assert.equal(rip, BigInt(UNMAPPED + 0x10));
    assert.equal(cs, BigInt(SEL.CODE64));
    assert.equal(rflags! & RF, RF, 'a fault sets RF in the pushed image (3.1.6)');
    assert.equal(h.cpu.cr2, BigInt(UNMAPPED + 0x10));
  });

  it('#UD: UD2 and INTO/BOUND in 64-bit mode are faults at the first byte with RF=1 pushed', () => {
    for (const bytes of [[0x0f, 0x0b], [0xce], [0x3e, 0xce], [0x62, 0x03]]) {
      const h = harness('long');
      h.code(bytes);
      step(h.cpu);
      assert.equal(h.vector(), VEC.UD, `${bytes}`);
      const [rip, , rflags] = h.frame(3);
      assert.equal(rip, BigInt(CODE));
      assert.equal(rflags! & RF, RF);
    }
  });

  it('INT n from CPL 3 through a DPL-0 gate: #GP(vector*8+2), a fault on the INT, stack switch to RSP0 (8.9.3; vol. 3 INT)', () => {
    const h = harness('long');
    h.gate(0x80, { dpl: 0 });
    h.gate(VEC.GP, { dpl: 0 });
    h.toUser64();
    h.code([0xcd, 0x80]);
    step(h.cpu);
    assert.equal(h.vector(), VEC.GP);
    assert.equal(h.cpu.cpl, 0);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(RSP0 - 48));
    const [err, rip, cs, , rsp, ss] = h.frame(6);
    assert.equal(err, BigInt(0x80 * 8 + 2), 'IDT bit, EXT=0 (INT n is not external)');
    assert.equal(rip, BigInt(CODE), 'the INT is restarted');
    assert.equal(cs, BigInt(SEL.UCODE64));
    assert.equal(rsp, BigInt(USER_STACK));
    assert.equal(ss, BigInt(SEL.UDATA));
    assert.equal(h.cpu.seg[SEG.SS]!.selector, 0, 'null SS with RPL 0 after the switch');
  });

  it('INT3 from CPL 3 through a DPL-0 gate is #GP(0x1a); ICEBP is not DPL-checked', () => {
    const h = harness('long');
    h.toUser64();
    h.code([0xcc]);
    step(h.cpu);
    assert.equal(h.vector(), VEC.GP);
    assert.equal(h.frame(1)[0], BigInt(VEC.BP * 8 + 2));

    const i = harness('long');
    i.toUser64();
    i.code([0xf1]);
    step(i.cpu);
    assert.equal(i.vector(), VEC.DB);
    assert.equal(i.cpu.cpl, 0);
    assert.equal(i.frame(1)[0], BigInt(CODE + 1));
    assert.equal(i.frame(5)[3], BigInt(USER_STACK), 'outer RSP pushed');
  });

  it('IST1: RSP from the TSS, aligned down to 16, even without a privilege change (8.9.4)', () => {
    const h = harness('long');
    h.gate(0x21, { ist: 1 });
    h.code([0xcd, 0x21]);
    step(h.cpu);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt((IST1 & ~0xf) - 40));
    assert.equal(h.frame(4)[3], BigInt(STACK0), 'old RSP pushed');
    assert.equal(h.cpu.seg[SEG.SS]!.selector, SEL.DATA, 'no privilege change: SS kept');
  });

  it('interrupt gate clears IF, trap gate keeps it; both clear TF, NT, RF (8.9)', () => {
    for (const [type, ifAfter] of [[0xe, 0], [0xf, F.IF]] as const) {
      const h = harness('long');
      h.gate(0x30, { type });
      h.cpu.rflags = 0x2 | F.IF | F.NT;
      h.code([0xcd, 0x30]);
      step(h.cpu);
      assert.equal(h.cpu.rflags & F.IF, ifAfter);
      assert.equal(h.cpu.rflags & (F.TF | F.NT | F.RF), 0);
      assert.equal(h.frame(3)[2]! & BigInt(F.NT), BigInt(F.NT), 'pushed image keeps NT');
    }
  });

  it('gate beyond the IDT limit: #GP(vector*8+2) for INT n, +EXT for an external interrupt (8.4.1)', () => {
    const h = harness('long');
    h.cpu.idtr.limit = 32 * 16 - 1;
    h.code([0xcd, 0x40]);
    step(h.cpu);
    assert.equal(h.vector(), VEC.GP);
    assert.deepEqual(h.frame(2), [0x202n, BigInt(CODE)]);

    const x = harness('long');
    x.cpu.idtr.limit = 32 * 16 - 1;
    const r = deliverEvent(x.cpu, { vector: 0x40, kind: 'external', returnRip: 0x1234n });
    assert.equal(r.outcome, 'delivered');
    assert.equal(x.vector(), VEC.GP);
    assert.deepEqual(x.frame(2), [0x203n, 0x1234n]);
  });

  it('not-present gate: #NP(vector*8+2), EXT=1 when the event is an exception (8.4.1)', () => {
    const h = harness('long');
    h.gate(0x50, { present: false });
    h.code([0xcd, 0x50]);
    step(h.cpu);
    assert.equal(h.vector(), VEC.NP);
    assert.equal(h.frame(1)[0], BigInt(0x50 * 8 + 2));

    const u = harness('long');
    u.gate(VEC.UD, { present: false });
    u.code([0x0f, 0x0b]);
    step(u.cpu);
    assert.equal(u.vector(), VEC.NP, '#UD is benign: #NP delivered serially (8.2.9)');
    assert.deepEqual(u.frame(2), [BigInt(VEC.UD * 8 + 3), BigInt(CODE)]);
  });

  it('#PF while delivering #PF (stack not present) becomes #DF(0); CR2 = the second address (8.2.9, 8.4.2)', () => {
    const h = harness('long');
    h.gate(VEC.DF, { ist: 1 });
    h.cpu.gpr[GPR.RSP] = BigInt(UNMAPPED + 0x800);
    h.cpu.rip = BigInt(UNMAPPED + 0x10); // fetch #PF, then its frame #PFs
    step(h.cpu);
    assert.equal(h.vector(), VEC.DF);
    const [err, rip] = h.frame(2);
    assert.equal(err, 0n);
    assert.equal(rip, BigInt(UNMAPPED + 0x10));
    assert.equal(h.cpu.cr2, BigInt(UNMAPPED + 0x800 - 8), 'the frame write that faulted (SS slot)');
  });

  it('#PF whose gate is beyond the IDT limit: #GP is contributory after #PF → #DF (the l1.faults df_idt_limit case)', () => {
    const h = harness('long');
    h.cpu.idtr.limit = 14 * 16 - 1;
    h.cpu.rip = BigInt(UNMAPPED);
    step(h.cpu);
    assert.equal(h.vector(), VEC.DF);
    assert.equal(h.frame(1)[0], 0n);
    assert.equal(h.cpu.cr2, BigInt(UNMAPPED));
  });

  it('#UD → #NP (serial) → #GP (contributory twice: #DF) → #GP while delivering #DF: shutdown (8.2.9)', () => {
    const h = harness('long');
    h.gate(VEC.UD, { present: false });
    h.gate(VEC.NP, { type: 0x0 });
    h.gate(VEC.DF, { type: 0x5 }); // a task gate is not valid in the long-mode IDT: #GP
    const seen: string[] = [];
    h.cpu.eventHooks = { onException: (c, f, during) => (seen.push(`${f.vector}:${f.errorCode} during ${during.vector} (${c.delivering === during})`), false) };
    h.code([0x0f, 0x0b]);
    assert.throws(() => step(h.cpu), Shutdown);
    assert.deepEqual(seen, [
      `11:${6 * 8 + 3} during 6 (true)`,
      `13:${11 * 8 + 3} during 11 (true)`,
      '8:0 during 11 (true)',
      `13:${8 * 8 + 3} during 8 (true)`,
    ]);
    assert.equal(h.cpu.rip, BigInt(CODE), 'nothing committed');
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(STACK0));
  });

  it('hooks: beforeDeliver intercepts an event before any change; onException sees the event being delivered', () => {
    const h = harness('long');
    h.cpu.eventHooks = { beforeDeliver: (_c, e) => e.kind === 'softint' };
    h.code([0xcd, 0x80]);
    step(h.cpu);
    assert.equal(h.cpu.rip, BigInt(CODE));
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(STACK0));

    const g = harness('long');
    g.cpu.idtr.limit = 32 * 16 - 1;
    let during: Event | undefined;
    g.cpu.eventHooks = { onException: (c, f, d) => ((during = c.delivering), f.vector === VEC.GP) };
    g.code([0xcd, 0x40]);
    step(g.cpu);
    assert.deepEqual(during, { vector: 0x40, kind: 'softint', returnRip: BigInt(CODE + 2), insnRip: BigInt(CODE) });
    assert.equal(g.cpu.delivering, undefined);
    assert.equal(g.cpu.rip, BigInt(CODE));
  });

  it('table 8-6 classes: only processor exceptions are contributory or page faults', () => {
    const ex = (vector: number): Event => ({ vector, kind: 'exception', returnRip: 0n });
    assert.equal(combine(ex(VEC.GP), ex(VEC.NP)), 'double');
    assert.equal(combine(ex(VEC.PF), ex(VEC.PF)), 'double');
    assert.equal(combine(ex(VEC.PF), ex(VEC.GP)), 'double');
    assert.equal(combine(ex(VEC.GP), ex(VEC.PF)), 'serial');
    assert.equal(combine(ex(VEC.UD), ex(VEC.GP)), 'serial');
    assert.equal(combine({ vector: 13, kind: 'softint', returnRip: 0n }, ex(VEC.GP)), 'serial', 'int $13 is benign');
    assert.equal(combine(ex(VEC.DF), ex(VEC.UD)), 'shutdown');
  });
});

describe('model events: compatibility mode INTO and BOUND (vol. 3 INTO, BOUND)', () => {
  const run = (bytes: number[], setup: (h: ReturnType<typeof harness>) => void) => {
    const h = harness('long');
    h.toCompat();
    setup(h);
    h.code(bytes);
    step(h.cpu);
    return h;
  };
  it('INTO: OF=1 → #OF trap with a 64-bit frame and the compatibility CS; OF=0 → next instruction', () => {
    for (const bytes of [[0xce], [0x3e, 0xce]]) {
      const h = run(bytes, (x) => (x.cpu.rflags |= F.OF));
      assert.equal(h.vector(), VEC.OF);
      const [rip, cs, rflags] = h.frame(3);
      assert.equal(rip, BigInt(CODE + bytes.length));
      assert.equal(cs, BigInt(SEL.CODE32));
      assert.equal(rflags! & RF, 0n, 'a trap: RF not set');
      const q = run(bytes, () => {});
      assert.equal(q.cpu.rip, BigInt(CODE + bytes.length));
      assert.equal(q.cpu.gpr[GPR.RSP], BigInt(STACK0));
    }
  });
  it('BOUND: out of range → #BR fault at the BOUND (RF=1 pushed); in range → next instruction; 16-bit form', () => {
    const setup = (index: number) => (h: ReturnType<typeof harness>) => {
      h.mem.write32(BOUNDS, 10);
      h.mem.write32(BOUNDS + 4, 20);
      h.mem.write16(BOUNDS + 8, 0xfffe); // -2
      h.mem.write16(BOUNDS + 10, 5);
      h.cpu.gpr[GPR.RAX] = BigInt(index);
      h.cpu.gpr[GPR.RBX] = BigInt(BOUNDS);
    };
    for (const bytes of [[0x62, 0x03], [0x3e, 0x62, 0x03]]) {
      for (const [index, hit] of [[30, true], [9, true], [10, false], [20, false]] as const) {
        const h = run(bytes, setup(index));
        if (hit) {
          assert.equal(h.vector(), VEC.BR, `index ${index}`);
          const [rip, cs, rflags] = h.frame(3);
          assert.equal(rip, BigInt(CODE));
          assert.equal(cs, BigInt(SEL.CODE32));
          assert.equal(rflags! & RF, RF);
        } else {
          assert.equal(h.cpu.rip, BigInt(CODE + bytes.length), `index ${index}`);
        }
      }
    }
    // 66 62 43 08: bound ax, [ebx+8] with signed 16-bit bounds [-2, 5]
    assert.equal(run([0x66, 0x62, 0x43, 0x08], setup(0xfffd)).vector(), VEC.BR, '-3 < -2');
    assert.equal(run([0x66, 0x62, 0x43, 0x08], setup(0xffff)).cpu.rip, BigInt(CODE + 4), '-1 in range');
  });
  it('BOUND reading a not-present page: #PF with the read error code, RIP = the BOUND', () => {
    const h = run([0x62, 0x03], (x) => (x.cpu.gpr[GPR.RBX] = BigInt(UNMAPPED)));
    assert.equal(h.vector(), VEC.PF);
    assert.deepEqual(h.frame(2), [0n, BigInt(CODE)]);
    assert.equal(h.cpu.cr2, BigInt(UNMAPPED));
  });
});

describe('model events: legacy protected mode (8.7)', () => {
  it('INT n through a 32-bit interrupt gate: EFLAGS, CS, EIP; #GP pushes a 32-bit error code', () => {
    const h = harness('legacy');
    h.code([0x3e, 0xcd, 0x44]);
    step(h.cpu);
    assert.equal(h.vector(), 0x44);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(STACK0 - 12));
    assert.deepEqual(h.frame(3, 4), [BigInt(CODE + 3), BigInt(SEL.CODE64), BigInt(0x2 | F.IF)]);

    const g = harness('legacy');
    g.cpu.idtr.limit = 0x40 * 8 - 1;
    g.code([0xcd, 0x40]);
    step(g.cpu);
    assert.equal(g.vector(), VEC.GP);
    assert.deepEqual(g.frame(2, 4), [0x202n, BigInt(CODE)]);
  });
  it('from CPL 3: stack switch through the 32-bit TSS, SS and ESP pushed (8.7)', () => {
    const h = harness('legacy');
    h.gate(0x80, { dpl: 3 });
    h.setSeg(SEG.CS, SEL.UCODE64); // 32-bit user code in the legacy GDT
    h.setSeg(SEG.SS, SEL.UDATA);
    h.cpu.cpl = 3;
    h.cpu.gpr[GPR.RSP] = BigInt(USER_STACK);
    h.code([0xcd, 0x80]);
    step(h.cpu);
    assert.equal(h.cpu.cpl, 0);
    assert.equal(h.cpu.seg[SEG.SS]!.selector, SEL.DATA);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(RSP0 - 20));
    assert.deepEqual(h.frame(5, 4), [BigInt(CODE + 2), BigInt(SEL.UCODE64), BigInt(0x2 | F.IF), BigInt(USER_STACK), BigInt(SEL.UDATA)]);
  });
  it('a 16-bit trap gate pushes a 16-bit frame and keeps IF', () => {
    const h = harness('legacy');
    h.gate(0x45, { type: 0x7 });
    h.code([0xcd, 0x45]);
    step(h.cpu);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(STACK0 - 6));
    assert.deepEqual(h.frame(3, 2), [BigInt(CODE + 2) & 0xffffn, BigInt(SEL.CODE64), BigInt(0x2 | F.IF)]);
    assert.equal(h.cpu.rflags & F.IF, F.IF);
  });
});

describe('model events: returns and far transfers (vol. 3 IRET, JMP/RET far)', () => {
  it('IRETQ after INT n returns past the INT with RSP and RFLAGS restored', () => {
    const h = harness('long');
    h.code([0xcd, 0x80, 0xcd, 0x81]);
    h.code([0x48, 0xcf], HANDLERS + 16 * 0x80);
    step(h.cpu);
    step(h.cpu);
    assert.equal(h.cpu.rip, BigInt(CODE + 2));
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(STACK0));
    assert.equal(h.cpu.rflags, 0x2 | F.IF);
  });
  it('IRETQ to compatibility mode, then INTO there, then IRETQ back (the into_bound flow)', () => {
    const h = harness('long');
    // a frame for IRETQ: RIP, CS (32-bit), RFLAGS with OF, RSP, SS
    const frame = [BigInt(CODE + 0x100), BigInt(SEL.CODE32), BigInt(0x2 | F.OF), BigInt(STACK0), BigInt(SEL.DATA)];
    frame.forEach((v, i) => h.mem.write64(STACK0 - 40 + 8 * i, v));
    h.cpu.gpr[GPR.RSP] = BigInt(STACK0 - 40);
    h.code([0x48, 0xcf]);
    h.code([0xce], CODE + 0x100);
    h.code([0x48, 0xcf], HANDLERS + 16 * VEC.OF);
    step(h.cpu);
    assert.equal(h.cpu.mode64, false);
    assert.equal(h.cpu.bitness, 32);
    step(h.cpu);
    assert.equal(h.vector(), VEC.OF);
    assert.equal(h.frame(2)[1], BigInt(SEL.CODE32));
    step(h.cpu);
    assert.equal(h.cpu.rip, BigInt(CODE + 0x101));
    assert.equal(h.cpu.seg[SEG.CS]!.selector, SEL.CODE32);
  });
  it('IRETQ to CPL 3 nulls DS/ES/FS/GS of DPL 0; a bad CS RPL is #GP(selector)', () => {
    const h = harness('long');
    const frame = [BigInt(CODE + 0x100), BigInt(SEL.UCODE64), 0x2n, BigInt(USER_STACK), BigInt(SEL.UDATA)];
    frame.forEach((v, i) => h.mem.write64(STACK0 - 40 + 8 * i, v));
    h.cpu.gpr[GPR.RSP] = BigInt(STACK0 - 40);
    h.code([0x48, 0xcf]);
    step(h.cpu);
    assert.equal(h.cpu.cpl, 3);
    assert.equal(h.cpu.seg[SEG.DS]!.selector, 0);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(USER_STACK));

    const g = harness('long');
    [BigInt(CODE), BigInt(SEL.UCODE64 & ~3), 0x2n, BigInt(STACK0), BigInt(SEL.DATA)].forEach((v, i) => g.mem.write64(STACK0 - 40 + 8 * i, v));
    g.cpu.gpr[GPR.RSP] = BigInt(STACK0 - 40);
    g.code([0x48, 0xcf]);
    step(g.cpu);
    assert.equal(g.vector(), VEC.GP);
    assert.equal(g.frame(1)[0], BigInt(SEL.UCODE64 & ~3), 'DPL 3 code with RPL 0: DPL != RPL');
  });
  it('LRETQ into compatibility mode and LJMP ptr16:32 back to 64-bit code', () => {
    const h = harness('long');
    h.mem.write64(STACK0 - 16, BigInt(CODE + 0x100));
    h.mem.write64(STACK0 - 8, BigInt(SEL.CODE32));
    h.cpu.gpr[GPR.RSP] = BigInt(STACK0 - 16);
    h.code([0x48, 0xcb]);
    h.code([0xea, 0x00, 0x02, 0x01, 0x00, SEL.CODE64, 0x00], CODE + 0x100); // ljmp $0x08, $0x10200
    step(h.cpu);
    assert.equal(h.cpu.bitness, 32);
    assert.equal(h.cpu.gpr[GPR.RSP], BigInt(STACK0));
    step(h.cpu);
    assert.equal(h.cpu.mode64, true);
    assert.equal(h.cpu.rip, 0x10200n);
  });
});

describe('model events: descriptor loads shared with MOV Sreg (model/segmentation.ts; APM vol. 2 4.7.2, 4.7.3, 8.4.1)', () => {
  /** The type byte of a GDT descriptor, and the same with the accessed bit cleared. */
  const typeByte = (h: ReturnType<typeof harness>, sel: number) => h.mem.read8(GDT + (sel & ~7) + 5);
  const clearAccessed = (h: ReturnType<typeof harness>, ...sels: number[]) => {
    for (const sel of sels) h.mem.write8(GDT + (sel & ~7) + 5, typeByte(h, sel) & ~ATTR.TYPE_ACCESSED);
  };

  it('IRETQ to CPL 3 and INT n back set the accessed bit of CS and SS in the GDT and in the hidden attributes', () => {
    const h = harness('long');
    clearAccessed(h, SEL.UCODE64, SEL.UDATA, SEL.CODE64);
    h.gate(0x80, { dpl: 3 });
    [BigInt(CODE + 0x100), BigInt(SEL.UCODE64), 0x2n, BigInt(USER_STACK), BigInt(SEL.UDATA)].forEach((v, i) => h.mem.write64(STACK0 - 40 + 8 * i, v));
    h.cpu.gpr[GPR.RSP] = BigInt(STACK0 - 40);
    h.code([0x48, 0xcf]);
    h.code([0xcd, 0x80], CODE + 0x100);
    step(h.cpu);
    assert.equal(h.cpu.cpl, 3);
    assert.equal(typeByte(h, SEL.UCODE64) & ATTR.TYPE_ACCESSED, ATTR.TYPE_ACCESSED, 'CS descriptor (4.7.2)');
    assert.equal(typeByte(h, SEL.UDATA) & ATTR.TYPE_ACCESSED, ATTR.TYPE_ACCESSED, 'SS descriptor (4.7.3)');
    assert.equal(h.cpu.seg[SEG.CS]!.attrib & ATTR.TYPE_ACCESSED, ATTR.TYPE_ACCESSED);
    step(h.cpu);
    assert.equal(h.vector(), 0x80);
    assert.equal(h.cpu.cpl, 0);
    assert.equal(typeByte(h, SEL.CODE64) & ATTR.TYPE_ACCESSED, ATTR.TYPE_ACCESSED, 'the handler CS');
    assert.equal(h.cpu.seg[SEG.SS]!.selector, 0, 'a null SS: no descriptor to mark');
  });

  it('far JMP sets the accessed bit; a transfer that faults leaves it clear', () => {
    const h = harness('long');
    clearAccessed(h, SEL.CODE32);
    h.code([0xff, 0x2c, 0x25, 0x00, 0x01, 0x01, 0x00]); // ljmp *0x10100 (m16:32)
    h.mem.write32(CODE + 0x100, CODE + 0x200);
    h.mem.write16(CODE + 0x104, SEL.CODE32);
    step(h.cpu);
    assert.equal(h.cpu.bitness, 32);
    assert.equal(typeByte(h, SEL.CODE32) & ATTR.TYPE_ACCESSED, ATTR.TYPE_ACCESSED);

    const g = harness('long');
    clearAccessed(g, SEL.UCODE64, SEL.UDATA);
    // IRETQ to a non-canonical RIP: #GP(0) after every selector check, before anything is loaded
    [0x8000_0000_0000n, BigInt(SEL.UCODE64), 0x2n, BigInt(USER_STACK), BigInt(SEL.UDATA)].forEach((v, i) => g.mem.write64(STACK0 - 40 + 8 * i, v));
    g.cpu.gpr[GPR.RSP] = BigInt(STACK0 - 40);
    g.code([0x48, 0xcf]);
    step(g.cpu);
    assert.equal(g.vector(), VEC.GP);
    assert.equal(typeByte(g, SEL.UCODE64) & ATTR.TYPE_ACCESSED, 0);
    assert.equal(typeByte(g, SEL.UDATA) & ATTR.TYPE_ACCESSED, 0);
  });

  it('legacy stack switch: the TSS SS0 descriptor gets its accessed bit when it is loaded', () => {
    const h = harness('legacy');
    clearAccessed(h, SEL.DATA);
    h.gate(0x80, { dpl: 3 });
    h.setSeg(SEG.CS, SEL.UCODE64);
    h.setSeg(SEG.SS, SEL.UDATA);
    h.cpu.cpl = 3;
    h.cpu.gpr[GPR.RSP] = BigInt(USER_STACK);
    h.code([0xcd, 0x80]);
    step(h.cpu);
    assert.equal(h.cpu.seg[SEG.SS]!.selector, SEL.DATA);
    assert.equal(typeByte(h, SEL.DATA) & ATTR.TYPE_ACCESSED, ATTR.TYPE_ACCESSED);
  });

  it('a handler CS beyond the GDT: #GP(selector) for INT n, #GP(selector | EXT) for an exception (8.4.1)', () => {
    for (const [bytes, err] of [[[0xcd, 0x06], 0x80n], [[0x0f, 0x0b], 0x81n]] as const) {
      const h = harness('long');
      h.gate(VEC.UD, { sel: 0x80 });
      h.code([...bytes]);
      step(h.cpu);
      assert.equal(h.vector(), VEC.GP, `${bytes}`);
      assert.equal(h.frame(1)[0], err);
    }
  });

  it('a TI = 1 selector while LDTR is null: #GP(selector), as for MOV Sreg (vol. 3 LLDT)', () => {
    const h = harness('long');
    h.cpu.ldtr = { selector: 0, base: 0n, limit: 0xffff_ffff, attrib: 0 }; // the model's reset LDTR: unusable
    h.mem.write64(0x08, desc(0xb, 0, 1, 0)); // a code descriptor where an LDT at base 0 would have entry 1
    h.code([0xff, 0x2c, 0x25, 0x00, 0x01, 0x01, 0x00]); // ljmp *0x10100
    h.mem.write32(CODE + 0x100, CODE);
    h.mem.write16(CODE + 0x104, 0x0c);
    step(h.cpu);
    assert.equal(h.vector(), VEC.GP);
    assert.equal(h.frame(1)[0], 0x0cn);
  });
});

describe('model events: debug traps and faults (APM vol. 2 13.1, 3.1.6)', () => {
  it('TF: #DB trap after the instruction with DR6.BS, TF=1 in the pushed image, TF cleared in the handler', () => {
    const h = harness('long');
    h.toCompat();
    h.cpu.rflags |= F.TF;
    h.code([0xce]); // INTO with OF=0 completes
    step(h.cpu);
    assert.equal(h.vector(), VEC.DB);
    const [rip, , rflags] = h.frame(3);
    assert.equal(rip, BigInt(CODE + 1));
    assert.equal(rflags! & BigInt(F.TF), BigInt(F.TF));
    assert.equal(h.cpu.dr[6]! & (1n << 14n), 1n << 14n);
    assert.equal(h.cpu.rflags & F.TF, 0);
  });
  it('INT n with TF=1: no single-step trap after it, TF pushed and cleared (13.1.4)', () => {
    const h = harness('long');
    h.cpu.rflags |= F.TF;
    h.code([0xcd, 0x80]);
    step(h.cpu);
    assert.equal(h.vector(), 0x80);
    assert.equal(h.cpu.dr[6], 0n);
  });
  it('DR0 execute breakpoint: #DB fault at the instruction, RF=0 pushed, DR6.B0; IRET with RF=1 runs it once (13.1.3.1)', () => {
    const h = harness('long');
    h.cpu.dr[0] = BigInt(CODE);
    h.cpu.dr[7] = 0x401n; // L0, R/W0 = 00, LEN0 = 00
    h.code([0xcd, 0x80]);
    h.code([0x48, 0x81, 0x4c, 0x24, 0x10, 0x00, 0x00, 0x01, 0x00, 0x48, 0xcf], HANDLERS + 16 * VEC.DB); // or qword [rsp+16], RF; iretq
    step(h.cpu);
    assert.equal(h.vector(), VEC.DB);
    const [rip, , rflags] = h.frame(3);
    assert.equal(rip, BigInt(CODE));
    assert.equal(rflags! & RF, 0n);
    assert.equal(h.cpu.dr[6]! & 0xfn, 1n);
    step(h.cpu); // OR
    step(h.cpu); // IRETQ with RF=1
    assert.equal(h.cpu.rip, BigInt(CODE));
    assert.equal(h.cpu.rflags & F.RF, F.RF);
    step(h.cpu); // INT 0x80 executes despite DR0
    assert.equal(h.vector(), 0x80);
  });
});
