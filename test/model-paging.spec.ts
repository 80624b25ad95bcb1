// The model's page walk (model/paging.ts) against hand-built page tables. Expected addresses,
// error codes and A/D bits are derived from the AMD64 APM vol. 2 (pub. 24593): ch. 5 for the
// walks and entry formats, 5.6 for the protection checks, 8.4.2 for the #PF error code
// (P = 1, W = 2, U/S = 4, RSV = 8, I/D = 16).

import assert from 'node:assert/strict';
import { ACC, Cpu, EFER_LMA, EFER_LME, EFER_NXE } from '../model/cpu/cpu.ts';
import { Fault } from '../model/cpu/fault.ts';
import { PhysicalMemory } from '../model/memory.ts';
import { flushTlb, IDENTITY_PHYS, setPhysAccess, translate, tlbSize, type PhysAccess } from '../model/paging.ts';
import { handlerFor } from '../model/isa/registry.ts';

const P = 1n, W = 2n, U = 4n, A = 1n << 5n, D = 1n << 6n, PS = 1n << 7n, NX = 1n << 63n;
const CR0_PE = 1n, CR0_WP = 1n << 16n, CR0_PG = 1n << 31n;
const CR4_PSE = 1n << 4n, CR4_PAE = 1n << 5n;

function newCpu(): Cpu {
  const mem = new PhysicalMemory(16 << 20);
  return new Cpu(mem, { translate, handlerFor, portIn: () => 0xff, portOut: () => {} });
}

/** #PF thrown by translate, as [error code, CR2 value]. */
function pf(cpu: Cpu, linear: bigint, access: number): [number, bigint] {
  try {
    translate(cpu, linear, access);
  } catch (e) {
    assert.ok(e instanceof Fault, String(e));
    assert.equal(e.vector, 14);
    return [e.errorCode!, e.cr2!];
  }
  assert.fail(`no #PF for 0x${linear.toString(16)}`);
}

// 4-level tables at fixed physical addresses; linear 0x0000_7f80_4020_3000 uses
// PML4[0xff] PDPT[0x1] PD[0x1] PT[0x3] (bits 47:39 = 0xff, 38:30 = 1, 29:21 = 1, 20:12 = 3).
const PML4 = 0x10000, PDPT = 0x11000, PD = 0x12000, PT = 0x13000;
const LIN = 0x0000_7f80_4020_3000n;
const FRAME = 0x0abc_d000;

function longMode(cpu: Cpu, { nxe = true, wp = true } = {}): void {
  cpu.cr0 = CR0_PE | CR0_PG | (wp ? CR0_WP : 0n);
  cpu.cr4 = CR4_PAE;
  cpu.efer = EFER_LME | EFER_LMA | (nxe ? EFER_NXE : 0n);
  cpu.cr3 = BigInt(PML4);
}

function map4k(cpu: Cpu, leafFlags = P | W | U, upper = P | W | U): void {
  const m = cpu.mem;
  m.write64(PML4 + 0xff * 8, BigInt(PDPT) | upper);
  m.write64(PDPT + 1 * 8, BigInt(PD) | upper);
  m.write64(PD + 1 * 8, BigInt(PT) | upper);
  m.write64(PT + 3 * 8, BigInt(FRAME) | leafFlags);
}

const entry = (cpu: Cpu, addr: number): bigint => cpu.mem.read64(addr);

describe('model paging: 4-level long mode (APM vol. 2 5.3)', () => {
  it('walks PML4 → PDPT → PD → PT to a 4 KiB frame, keeping the page offset', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    assert.equal(translate(cpu, LIN + 0x123n, ACC.READ), FRAME + 0x123);
  });

  it('sets A on every level of a read, D only on the final entry of a write (5.4.2)', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    translate(cpu, LIN, ACC.READ);
    for (const a of [PML4 + 0xff * 8, PDPT + 8, PD + 8, PT + 24]) assert.equal(entry(cpu, a) & (A | D), A, `entry at 0x${a.toString(16)}`);
    translate(cpu, LIN, ACC.WRITE);
    assert.equal(entry(cpu, PT + 24) & (A | D), A | D);
    for (const a of [PML4 + 0xff * 8, PDPT + 8, PD + 8]) assert.equal(entry(cpu, a) & D, 0n, 'no D on non-leaf entries');
  });

  it('a write that hits a translation cached by a read still sets D', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    translate(cpu, LIN, ACC.READ);
    assert.equal(entry(cpu, PT + 24) & D, 0n);
    assert.equal(tlbSize(cpu), 1);
    translate(cpu, LIN + 8n, ACC.WRITE);
    assert.equal(entry(cpu, PT + 24) & D, D);
  });

  it('not present: P = 0 in the error code, W and U/S from the access (8.4.2); CR2 = the linear address', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu, 0n);
    assert.deepEqual(pf(cpu, LIN + 5n, ACC.READ), [0, LIN + 5n]);
    assert.deepEqual(pf(cpu, LIN, ACC.WRITE | ACC.USER), [0b110, LIN]);
    // a not-present upper level ends the walk there
    cpu.mem.write64(PDPT + 8, 0n);
    flushTlb(cpu);
    assert.deepEqual(pf(cpu, LIN, ACC.WRITE), [0b010, LIN]);
  });

  it('a faulting walk sets no A bit', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu, 0n);
    pf(cpu, LIN, ACC.READ);
    for (const a of [PML4 + 0xff * 8, PDPT + 8, PD + 8]) assert.equal(entry(cpu, a) & A, 0n);
  });

  it('supervisor write to a read-only page: #PF(P|W) with CR0.WP = 1, allowed with WP = 0 (5.6.2 ff.)', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu, P | U); // R/W = 0 in the PTE
    assert.deepEqual(pf(cpu, LIN, ACC.WRITE), [0b011, LIN]);
    longMode(cpu, { wp: false });
    assert.equal(translate(cpu, LIN, ACC.WRITE), FRAME);
    assert.equal(entry(cpu, PT + 24) & D, D, 'the permitted write sets D');
    // a user write faults whatever WP says
    assert.deepEqual(pf(cpu, LIN, ACC.WRITE | ACC.USER), [0b111, LIN]);
  });

  it('R/W = 0 in an upper level makes the whole page read-only', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    cpu.mem.write64(PDPT + 8, BigInt(PD) | P | U);
    assert.deepEqual(pf(cpu, LIN, ACC.WRITE), [0b011, LIN]);
    assert.equal(translate(cpu, LIN, ACC.READ), FRAME);
  });

  it('user access to a supervisor page (U/S = 0 at any level): #PF(P|U), (P|W|U) for a write', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    cpu.mem.write64(PML4 + 0xff * 8, BigInt(PDPT) | P | W);
    assert.deepEqual(pf(cpu, LIN, ACC.READ | ACC.USER), [0b101, LIN]);
    assert.deepEqual(pf(cpu, LIN, ACC.WRITE | ACC.USER), [0b111, LIN]);
    assert.equal(translate(cpu, LIN, ACC.READ), FRAME, 'supervisor reads are allowed');
  });

  it('fetch from an NX page with EFER.NXE = 1: #PF(P|I/D), user fetch #PF(P|U|I/D) (5.6.4, 8.4.2)', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu, P | W | U | NX);
    assert.equal(translate(cpu, LIN, ACC.READ), FRAME, 'reads of an NX page are fine');
    assert.deepEqual(pf(cpu, LIN, ACC.FETCH), [0x11, LIN]);
    assert.deepEqual(pf(cpu, LIN, ACC.FETCH | ACC.USER), [0x15, LIN]);
  });

  it('I/D is reported only with NXE = 1: a not-present fetch gives 0x10 with NXE, 0 without', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu, 0n);
    assert.deepEqual(pf(cpu, LIN, ACC.FETCH), [0x10, LIN]);
    longMode(cpu, { nxe: false });
    assert.deepEqual(pf(cpu, LIN, ACC.FETCH), [0, LIN]);
  });

  it('bit 63 with EFER.NXE = 0 is reserved: #PF(P|RSV) (5.3.3)', () => {
    const cpu = newCpu();
    longMode(cpu, { nxe: false });
    map4k(cpu, P | W | NX);
    assert.deepEqual(pf(cpu, LIN, ACC.READ), [0b1001, LIN]);
    assert.deepEqual(pf(cpu, LIN, ACC.WRITE), [0b1011, LIN]);
  });

  it('address bits above the physical-address width (48, CPUID 8000_0008) are reserved: #PF(P|RSV)', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    cpu.mem.write64(PD + 8, BigInt(PT) | P | W | U | (1n << 50n));
    assert.deepEqual(pf(cpu, LIN, ACC.READ | ACC.USER), [0b1101, LIN]);
  });

  it('PS in a PML4E is reserved (MBZ)', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    cpu.mem.write64(PML4 + 0xff * 8, BigInt(PDPT) | P | W | U | PS);
    assert.deepEqual(pf(cpu, LIN, ACC.READ), [0b1001, LIN]);
  });

  it('2 MiB page: PDE.PS = 1, physical = PDE[51:21] + linear[20:0]; A and D on the PDE', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    cpu.mem.write64(PD + 8, 0x0060_0000n | P | W | PS);
    // linear 0x7f80_4020_3000 is 0x3000 into the 2 MiB page at 0x7f80_4020_0000
    assert.equal(translate(cpu, LIN + 0x45n, ACC.READ), 0x60_0000 + 0x3045);
    assert.equal(translate(cpu, LIN + 0x1f_0000n - 0x3000n, ACC.WRITE), 0x60_0000 + 0x1f_0000);
    assert.equal(entry(cpu, PD + 8) & (A | D), A | D);
    assert.equal(entry(cpu, PT + 24) & A, 0n, 'the PT is not walked');
  });

  it('2 MiB page with a bit of 20:13 set: #PF(P|RSV)', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    cpu.mem.write64(PD + 8, 0x0060_0000n | (1n << 13n) | P | W | PS);
    assert.deepEqual(pf(cpu, LIN, ACC.READ), [0b1001, LIN]);
  });

  it('1 GiB page: PDPE.PS = 1 (CPUID Page1GB), physical = PDPE[51:30] + linear[29:0]', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    cpu.mem.write64(PDPT + 8, 0x4000_0000n | P | W | PS);
    // linear bits 29:0 of LIN are 0x0020_3000; physical 0x4000_0000 + that (beyond RAM: only the address is checked)
    assert.equal(translate(cpu, LIN, ACC.READ), 0x4020_3000);
  });
});

describe('model paging: legacy modes (APM vol. 2 5.2, 5.3 PAE)', () => {
  it('paging off: linear = physical, 32 bits', () => {
    const cpu = newCpu();
    cpu.cr0 = CR0_PE;
    assert.equal(translate(cpu, 0x1234_5678n, ACC.WRITE), 0x1234_5678);
  });

  it('32-bit paging, 4 KiB: PD[31:22] → PT[21:12]; 4-byte entries, A/D set', () => {
    const cpu = newCpu();
    cpu.cr0 = CR0_PE | CR0_PG;
    cpu.cr3 = 0x20000n;
    // linear 0x0040_5123: PDE 1, PTE 5, offset 0x123
    cpu.mem.write32(0x20000 + 4, 0x21000 | 0x7);
    cpu.mem.write32(0x21000 + 5 * 4, 0x0033_3000 | 0x3);
    assert.equal(translate(cpu, 0x0040_5123n, ACC.WRITE), 0x0033_3123);
    assert.equal(cpu.mem.read32(0x20004) & 0x60, 0x20, 'PDE: A');
    assert.equal(cpu.mem.read32(0x21014) & 0x60, 0x60, 'PTE: A and D');
    assert.equal(cpu.mem.read32(0x20008), 0, 'the neighbouring 4-byte entry is untouched');
    assert.deepEqual(pf(cpu, 0x0040_5000n, ACC.READ | ACC.USER), [0b101, 0x0040_5000n]);
  });

  it('32-bit paging, 4 MiB page with CR4.PSE: PDE[31:22] + linear[21:0]; PDE bits 20:13 give physical 39:32', () => {
    const cpu = newCpu();
    cpu.cr0 = CR0_PE | CR0_PG;
    cpu.cr4 = CR4_PSE;
    cpu.cr3 = 0x20000n;
    cpu.mem.write32(0x20000 + 2 * 4, 0x00c0_0000 | 0x83);
    assert.equal(translate(cpu, 0x0081_2345n, ACC.READ), 0x00c1_2345);
    cpu.mem.write32(0x20000 + 2 * 4, 0x00c0_0000 | (1 << 13) | 0x83);
    flushTlb(cpu);
    assert.equal(translate(cpu, 0x0081_2345n, ACC.READ), 0x1_00c1_2345);
  });

  it('32-bit paging without CR4.PSE ignores PDE.PS: the PDE points to a page table', () => {
    const cpu = newCpu();
    cpu.cr0 = CR0_PE | CR0_PG;
    cpu.cr3 = 0x20000n;
    cpu.mem.write32(0x20000 + 2 * 4, 0x21000 | 0x83);
    cpu.mem.write32(0x21000 + 0x12 * 4, 0x0044_4000 | 0x1);
    assert.equal(translate(cpu, 0x0081_2345n, ACC.READ), 0x0044_4345);
  });

  it('PAE: 4 PDPEs at CR3[31:5] → PD → PT (or 2 MiB); legacy PDPEs get no A bit', () => {
    const cpu = newCpu();
    cpu.cr0 = CR0_PE | CR0_PG | CR0_WP;
    cpu.cr4 = CR4_PAE;
    cpu.cr3 = 0x30020n; // 32-byte aligned
    // linear 0xc060_1abc: PDPE 3, PDE 3, PTE 1, offset 0xabc
    cpu.mem.write64(0x30020 + 3 * 8, 0x31000n | P);
    cpu.mem.write64(0x31000 + 3 * 8, 0x32000n | P | W);
    cpu.mem.write64(0x32000 + 1 * 8, 0x0055_5000n | P);
    assert.equal(translate(cpu, 0xc060_1abcn, ACC.READ), 0x0055_5abc);
    assert.equal(cpu.mem.read64(0x30038), 0x31000n | P, 'PDPE unchanged');
    assert.equal(cpu.mem.read64(0x31018) & A, A);
    assert.deepEqual(pf(cpu, 0xc060_1abcn, ACC.WRITE), [0b011, 0xc060_1abcn]);
    // 2 MiB page in PDE 4
    cpu.mem.write64(0x31000 + 4 * 8, 0x0060_0000n | P | W | PS);
    assert.equal(translate(cpu, 0xc081_2345n, ACC.WRITE), 0x0061_2345);
  });

  it('PAE: reserved bits of a legacy PDPE (R/W at bit 1 is reserved there): #PF(P|RSV)', () => {
    const cpu = newCpu();
    cpu.cr0 = CR0_PE | CR0_PG;
    cpu.cr4 = CR4_PAE;
    cpu.cr3 = 0x30000n;
    cpu.mem.write64(0x30000, 0x31000n | P | W);
    assert.deepEqual(pf(cpu, 0x1000n, ACC.READ), [0b1001, 0x1000n]);
  });
});

describe('model paging: TLB and the guest-physical hook', () => {
  it('a cached translation survives a PTE edit until INVLPG/flush; a CR3 change drops it by itself', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu);
    assert.equal(translate(cpu, LIN, ACC.READ), FRAME);
    cpu.mem.write64(PT + 24, 0x0bbb_0000n | P | W);
    assert.equal(translate(cpu, LIN, ACC.READ), FRAME, 'stale until invalidated, as on hardware');
    flushTlb(cpu);
    assert.equal(translate(cpu, LIN, ACC.READ), 0x0bbb_0000);
    cpu.mem.write64(PT + 24, BigInt(FRAME) | P | W);
    cpu.cr3 = BigInt(PML4) | 0x8n; // a different CR3 value (PWT) written behind the model's back
    assert.equal(translate(cpu, LIN, ACC.READ), FRAME);
  });

  it('a cached read translation does not let a user access or an NX fetch through', () => {
    const cpu = newCpu();
    longMode(cpu);
    map4k(cpu, P | W | NX, P | W | U);
    translate(cpu, LIN, ACC.READ);
    assert.deepEqual(pf(cpu, LIN, ACC.READ | ACC.USER), [0b101, LIN]);
    assert.deepEqual(pf(cpu, LIN, ACC.FETCH), [0x11, LIN]);
  });

  it('every entry read, A/D update and final address goes through the installed PhysAccess', () => {
    const cpu = newCpu();
    longMode(cpu);
    const HOST = 0x100000; // guest-physical g lives at host-physical g + HOST
    const m = cpu.mem;
    m.write64(HOST + PML4 + 0xff * 8, BigInt(PDPT) | P | W);
    m.write64(HOST + PDPT + 8, BigInt(PD) | P | W);
    m.write64(HOST + PD + 8, BigInt(PT) | P | W);
    m.write64(HOST + PT + 24, BigInt(FRAME) | P | W);
    const log: string[] = [];
    const nested: PhysAccess = {
      readPte: (c, gpa, size) => { log.push(`r${gpa.toString(16)}`); return IDENTITY_PHYS.readPte(c, gpa + HOST, size); },
      writePte: (c, gpa, size, v) => { log.push(`w${gpa.toString(16)}`); IDENTITY_PHYS.writePte(c, gpa + HOST, size, v); },
      final: (_c, gpa) => { log.push(`f${gpa.toString(16)}`); return gpa + HOST; },
    };
    setPhysAccess(cpu, nested);
    assert.equal(translate(cpu, LIN + 1n, ACC.WRITE), FRAME + HOST + 1);
    assert.deepEqual(log, ['r107f8', 'r11008', 'r12008', 'r13018', 'w107f8', 'w11008', 'w12008', 'w13018', `f${(FRAME + 1).toString(16)}`]);
    assert.equal(m.read64(HOST + PT + 24) & (A | D), A | D);
    setPhysAccess(cpu, IDENTITY_PHYS);
    assert.throws(() => translate(cpu, LIN, ACC.READ), Fault, 'back to the (empty) host tables');
  });
});
