// The processor: architectural state plus what every instruction needs to touch it — operands,
// segmentation and paging on each memory access, the stack, and the fetch/decode cache.
//
// Areas of the manual live in their own modules and are reached through small hooks, so the
// arrows point one way (docs/model.md "One-way arrows inside model/"): paging (ch. 5) translates, segmentation (ch. 4)
// loads selectors, events (ch. 8) delivers, and a guest-mode layer (SVM, ch. 15) can wrap them.

import { CpuState, GPR, SEG, ATTR, M64 } from './state.ts';
import { AccessAbort, Fault, ModelStop } from './fault.ts';
import { decodeOne, NeedMoreBytes, type Insn, type Operand, type RegRef, NO_REG } from '../decode.ts';
import { PAGE_SHIFT, type PhysicalMemory } from '../memory.ts';
import { VEC } from '../../arch/x86.ts';
import { DEFAULT_PROFILE, type Profile } from '../profile.ts';
import type { Event } from '../events/classes.ts';

/** Kinds of memory access, as bits: the paging checks (APM vol. 2 5.6) depend on them. */
export const ACC = {
  READ: 0,
  WRITE: 1,
  /** The access is made at CPL 3 (user); system-table accesses are supervisor whatever the CPL. */
  USER: 2,
  FETCH: 4,
} as const;

export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;
export const EFER_SVME = 1n << 12n;
export const CR0_PE = 1n;
export const CR0_PG = 1n << 31n;

export type Handler = (cpu: Cpu, insn: Insn) => void;
export interface DecodedInsn extends Insn {
  exec: Handler;
}

/** Hooks the areas install (paging.ts, events/delivery.ts, devices); defaults for a bare CPU. */
export interface CpuHooks {
  /** Linear → physical, or throw a #PF Fault. */
  translate(cpu: Cpu, linear: bigint, access: number): number;
  /** Resolve the handler of a decoded instruction (isa/registry.ts). */
  handlerFor(insn: Insn): Handler;
  portIn(port: number, size: number): number;
  portOut(port: number, size: number, value: number): void;
}

/**
 * The hooks a guest-mode layer installs on `cpu.eventHooks` (none on a bare CPU). Returning true
 * means "intercepted": the hook has already done what happens instead (e.g. a #VMEXIT), and
 * delivery stops with no further change to the CPU.
 */
export interface EventHooks {
  /**
   * An event is about to be delivered: an instruction's fault or trap, INT n, an injected or
   * external event. Not called for exceptions raised during the delivery of another event
   * (those go to onException). Called before CR2 is written for a #PF, after DR6 is updated
   * for a #DB (APM vol. 2 15.12).
   */
  beforeDeliver?(cpu: Cpu, event: Event): boolean;
  /**
   * An exception was raised while delivering `during` (`cpu.delivering` is the same event). Called
   * first for the raw exception (before it is combined into #DF: APM vol. 2 15.7, 15.12), then,
   * if it combines into #DF, once more with the #DF (error code 0) and the same `during`.
   */
  onException?(cpu: Cpu, fault: Fault, during: Event): boolean;
  /** The processor is about to shut down (APM vol. 2 8.2.9). True: intercepted, no Shutdown thrown. */
  onShutdown?(cpu: Cpu, why: string): boolean;
  /**
   * An instruction is about to execute (fetched and decoded, RIP at its first byte, nothing done).
   * True: intercepted (e.g. an instruction intercept's #VMEXIT has replaced it); the run loop then
   * neither executes it nor advances RIP past it. Exceptions the instruction would raise first are
   * the hook's to let happen (return false).
   */
  beforeExecute?(cpu: Cpu, insn: Insn): boolean;
  /**
   * An access failed with an AccessAbort that is not a guest exception (a nested page fault): from
   * the instruction, its fetch, or the delivery of an event. True: handled (e.g. #VMEXIT(NPF)).
   */
  onAbort?(cpu: Cpu, abort: AccessAbort): boolean;
}

const LOW_EFER_LMA = 1 << 10;
const LOW_CR0_PE = 1;
const scratch64 = new BigUint64Array(1);
const scratch32 = new Uint32Array(scratch64.buffer);

/**
 * Bits 31:0 of a 64-bit value as a number. Through a BigUint64Array this costs about a
 * nanosecond; `Number(v & 0xffff_ffffn)` allocates and costs ten or more, and the mode getters
 * that use it run before every instruction.
 */
export function low32(v: bigint): number {
  scratch64[0] = v;
  return scratch32[0]!;
}

const MASK: Record<number, bigint> = { 1: 0xffn, 2: 0xffffn, 4: 0xffff_ffffn, 8: M64 };
export const maskOf = (size: number): bigint => MASK[size]!;

/** A decoded instruction and where it was fetched: RIP and CS base as 32-bit halves, code size. */
interface FetchEntry {
  insn: DecodedInsn;
  ripLo: number;
  ripHi: number;
  bitness: number;
  csLo: number;
  csHi: number;
  /** The decode-cache generation it was last known valid in (Cpu.codeGen). */
  gen: number;
  /** Where its bytes came from: the physical address of the first byte and of the first byte on the next page (-1: none), with the code versions of those pages (Cpu.codeVersion). */
  phys: number;
  phys2: number;
  version: number;
  version2: number;
}
const RECENT_SIZE = 4096;
/** Decoded instructions with their handler, shared like the Insns they copy (decode.ts): a cache miss after a paging change then allocates nothing. */
const withHandler = new WeakMap<Insn, DecodedInsn>();

export class Cpu extends CpuState {
  /** RIP of the instruction after the one executing (handlers of branches overwrite `rip`). */
  nextRip = 0n;
  /** The instruction executing, for faults and traps that need its address or length. */
  current: DecodedInsn | undefined;
  instructions = 0;
  profile: Profile = DEFAULT_PROFILE;
  /** Hooks a guest-mode layer installs to watch event delivery (EventHooks above); none on a bare CPU. */
  eventHooks: EventHooks | undefined;
  /** The event whose delivery is under way (APM vol. 2 8.2.9; SVM's EXITINTINFO), else undefined. */
  delivering: Event | undefined;
  /** Decoded instructions by the low half of RIP (see fetch). */
  private readonly decodeCache = new Map<number, FetchEntry>();
  /** The same entries in a direct-mapped table by RIP bits 11:0: one array load in a loop. */
  private readonly recent: (FetchEntry | undefined)[] = new Array(RECENT_SIZE).fill(undefined);
  /** RIP and the CS base, and the same as 32-bit halves: fetch's cache key. */
  private readonly fetchKey = new BigUint64Array(2);
  private readonly fetchKey32 = new Uint32Array(this.fetchKey.buffer);
  /**
   * Generation of the decode cache: bumped by what may change the bytes or the translation
   * behind an entry (paging and mode changes, CPL changes, writes to a code page). Entries of an
   * older generation are not dropped but re-validated on their next use: the fetch translates
   * their linear address again, as a miss would, and keeps the entry if it leads to the same
   * physical bytes (same physical addresses, no write to those pages since). An L1 kernel
   * changes paging and writes next to its code on every case; dropping the cache each time cost
   * ~17 k decodes per pass of the L1 suite.
   */
  private codeGen = 0;
  /** Physical page → number of writes seen to it while it held decoded code. */
  private readonly codeVersion = new Map<number, number>();

  constructor(readonly mem: PhysicalMemory, readonly hooks: CpuHooks) {
    super();
  }

  // ---- modes (APM vol. 2 1.2, 14.6) -------------------------------------------------------

  get longMode(): boolean {
    return (low32(this.efer) & LOW_EFER_LMA) !== 0;
  }
  /** 64-bit mode: long mode with CS.L = 1. */
  get mode64(): boolean {
    return this.longMode && (this.seg[SEG.CS]!.attrib & ATTR.L) !== 0;
  }
  get protectedMode(): boolean {
    return (low32(this.cr0) & LOW_CR0_PE) !== 0;
  }
  /** Default operand/address size of code: 16, 32 or 64. */
  get bitness(): 16 | 32 | 64 {
    if (this.mode64) return 64;
    if (!this.protectedMode) return 16;
    return this.seg[SEG.CS]!.attrib & ATTR.DB ? 32 : 16;
  }
  /** Stack address size: 8 in 64-bit mode, else SS.B. */
  get stackSize(): number {
    if (this.mode64) return 8;
    return this.seg[SEG.SS]!.attrib & ATTR.DB ? 4 : 2;
  }

  // ---- registers ------------------------------------------------------------------------------

  getGpr(index: number, size: number, high8 = false): bigint {
    const v = this.gpr[index]!;
    if (high8) return (v >> 8n) & 0xffn;
    return size === 8 ? v : v & MASK[size]!;
  }

  /** Writes follow the manual: 32-bit results zero-extend to 64 bits, 8/16-bit ones merge (APM vol. 1 3.1.2.3). */
  setGpr(index: number, size: number, value: bigint, high8 = false): void {
    if (high8) {
      this.gpr[index] = (this.gpr[index]! & ~0xff00n) | ((value & 0xffn) << 8n);
    } else if (size === 8) {
      this.gpr[index] = value;
    } else if (size === 4) {
      this.gpr[index] = value & 0xffff_ffffn;
    } else {
      const m = MASK[size]!;
      this.gpr[index] = (this.gpr[index]! & ~m) | (value & m);
    }
  }

  getReg(r: RegRef): bigint {
    switch (r.kind) {
      case 'gpr': return this.getGpr(r.index, r.size, r.high8);
      case 'seg': return BigInt(this.seg[r.index]!.selector);
      default: throw new ModelStop(`read of ${r.kind}${r.index} as an operand: use its instruction's handler`);
    }
  }

  setReg(r: RegRef, v: bigint): void {
    if (r.kind !== 'gpr') throw new ModelStop(`write of ${r.kind}${r.index} as an operand: use its instruction's handler`);
    this.setGpr(r.index, r.size, v, r.high8);
  }

  // ---- memory (segmentation ch. 4, paging ch. 5) ------------------------------------------------

  /** Effective address of a memory operand (before segmentation), wrapped to the address size. */
  effectiveAddress(op: Extract<Operand, { kind: 'mem' }>): bigint {
    let ea = op.disp;
    if (op.base !== NO_REG) ea += this.gpr[op.base]!;
    if (op.index !== NO_REG) ea += this.gpr[op.index]! * BigInt(op.scale);
    return ea & MASK[op.addrSize]!;
  }

  /**
   * Segment offset → linear address with the checks of the mode: in 64-bit mode only FS/GS add a
   * base and the address must be canonical (#GP(0), #SS(0) for the stack: APM vol. 2 4.12.1);
   * elsewhere the limit applies (expand-down segments are not used by svmconf's kernels).
   */
  linear(segIndex: number, offset: bigint, size: number): bigint {
    const s = this.seg[segIndex]!;
    if (this.mode64) {
      const lin = segIndex >= SEG.FS ? BigInt.asUintN(64, s.base + offset) : offset;
      if (!canonicalAddress(lin) || !endCanonical(lin, size)) {
        throw new Fault(segIndex === SEG.SS ? VEC.SS : VEC.GP, 0);
      }
      return lin;
    }
    // offset + size − 1 > limit, in numbers when the offset is below 2^32 (as it is outside 64-bit mode)
    scratch64[0] = offset;
    if (scratch32[1] !== 0 || scratch32[0]! + size - 1 > s.limit) {
      if (offset + BigInt(size - 1) > BigInt(s.limit)) throw new Fault(segIndex === SEG.SS ? VEC.SS : VEC.GP, 0);
    }
    return (s.base + offset) & 0xffff_ffffn;
  }

  private userAccess(): number {
    return this.cpl === 3 ? ACC.USER : 0;
  }

  /** Read `size` bytes at a linear address; accesses that cross a page are split. */
  readLinear(lin: bigint, size: number, access = this.userAccess()): bigint {
    const pageOff = low32(lin) & 0xfff;
    if (pageOff + size <= 4096) return this.mem.read(this.hooks.translate(this, lin, access), size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) {
      v = (v << 8n) | BigInt(this.mem.read8(this.hooks.translate(this, BigInt.asUintN(64, lin + BigInt(i)), access)));
    }
    return v;
  }

  writeLinear(lin: bigint, size: number, value: bigint, access = this.userAccess()): void {
    const pageOff = low32(lin) & 0xfff;
    if (pageOff + size <= 4096) {
      this.mem.write(this.hooks.translate(this, lin, access | ACC.WRITE), size, value);
      return;
    }
    // translate every page first: a fault on the second page must leave the first untouched
    const phys: number[] = [];
    for (let i = 0; i < size; i++) phys.push(this.hooks.translate(this, BigInt.asUintN(64, lin + BigInt(i)), access | ACC.WRITE));
    for (let i = 0; i < size; i++) this.mem.write8(phys[i]!, Number((value >> BigInt(8 * i)) & 0xffn));
  }

  read(segIndex: number, offset: bigint, size: number): bigint {
    return this.readLinear(this.linear(segIndex, offset, size), size);
  }

  write(segIndex: number, offset: bigint, size: number, value: bigint): void {
    this.writeLinear(this.linear(segIndex, offset, size), size, value);
  }

  // ---- operands -------------------------------------------------------------------------------

  readOp(op: Operand): bigint {
    switch (op.kind) {
      case 'reg': return this.getReg(op.reg);
      case 'imm': return op.value;
      case 'mem': return this.read(op.seg, this.effectiveAddress(op), op.size);
      case 'rel': return op.target;
      default: throw new ModelStop(`operand ${op.kind} read directly`);
    }
  }

  writeOp(op: Operand, value: bigint): void {
    if (op.kind === 'reg') this.setReg(op.reg, value);
    else if (op.kind === 'mem') this.write(op.seg, this.effectiveAddress(op), op.size, value & MASK[op.size]!);
    else throw new ModelStop(`operand ${op.kind} written`);
  }

  // ---- stack (APM vol. 1 3.7.4) -----------------------------------------------------------------

  push(value: bigint, size: number): void {
    const ss = this.stackSize;
    const rsp = (this.gpr[GPR.RSP]! - BigInt(size)) & MASK[ss]!;
    this.write(SEG.SS, rsp, size, value & MASK[size]!);
    this.setGpr(GPR.RSP, ss, rsp);
  }

  pop(size: number): bigint {
    const ss = this.stackSize;
    const rsp = this.gpr[GPR.RSP]! & MASK[ss]!;
    const v = this.read(SEG.SS, rsp, size);
    this.setGpr(GPR.RSP, ss, (rsp + BigInt(size)) & MASK[ss]!);
    return v;
  }

  // ---- fetch and decode -------------------------------------------------------------------------

  /**
   * The instruction at RIP, decoded once per linear address and code size. Each cache entry keeps
   * RIP, the code size and the CS base it was fetched under, which give its linear address. They
   * are compared as 32-bit halves: storing a bigint into a BigUint64Array and reading the halves
   * back costs about a nanosecond, where Number(bigint) or bigint === bigint cost ten or more, and
   * this runs before every instruction.
   */
  fetch(): DecodedInsn {
    const bitness = this.bitness;
    const rip = this.rip;
    const key = this.fetchKey;
    const k32 = this.fetchKey32;
    key[0] = rip;
    if (bitness !== 64) key[1] = this.seg[SEG.CS]!.base;
    const slot = k32[0]! & (RECENT_SIZE - 1);
    const recent = this.recent[slot];
    if (recent !== undefined && recent.gen === this.codeGen && this.fetchedHere(recent, bitness)) return recent.insn;
    let stale = this.decodeCache.get(k32[0]!);
    if (stale !== undefined && !this.fetchedHere(stale, bitness)) stale = undefined;
    if (stale !== undefined && stale.gen === this.codeGen) {
      this.recent[slot] = stale;
      return stale.insn;
    }
    const lin = bitness === 64 ? rip : (this.seg[SEG.CS]!.base + rip) & 0xffff_ffffn;
    // up to 15 bytes; each page is translated once, at its first byte (the bytes after it on the
    // same page translate alike), and a fault on the second page only matters if the
    // instruction needs bytes from there. Translation comes first, for an entry to re-validate
    // as well as for a miss, so both have the same effects (A bits, TLB fills, faults).
    const linOff = low32(lin) & 0xfff;
    const access = ACC.FETCH | this.userAccess();
    const phys = this.hooks.translate(this, lin, access);
    let phys2 = -1;
    let fetchFault: AccessAbort | undefined;
    if (linOff + 15 > 4096) {
      try {
        phys2 = this.hooks.translate(this, BigInt.asUintN(64, lin + BigInt(4096 - linOff)), access);
      } catch (e) {
        // a #PF, or a guest-mode abort such as a nested page fault, held back alike
        if (!(e instanceof AccessAbort)) throw e;
        fetchFault = e;
      }
    }
    const page = phys >>> PAGE_SHIFT;
    const page2 = phys2 >>> PAGE_SHIFT;
    this.watchCodePage(page);
    if (phys2 >= 0) this.watchCodePage(page2);
    const version = this.codeVersion.get(page) ?? 0;
    const version2 = phys2 >= 0 ? this.codeVersion.get(page2) ?? 0 : 0;
    if (stale !== undefined && stale.phys === phys && stale.version === version) {
      // the bytes it was decoded from on the next page, if it has any, must be the same too
      const spans = linOff + stale.insn.length > 4096;
      if (!spans || (stale.phys2 === phys2 && stale.version2 === version2)) {
        stale.gen = this.codeGen;
        this.recent[slot] = stale;
        return stale.insn;
      }
    }
    const bytes = new Uint8Array(15);
    const first = Math.min(15, 4096 - linOff);
    for (let i = 0; i < first; i++) bytes[i] = this.mem.read8(phys + i);
    let count = first;
    if (phys2 >= 0) for (; count < 15; count++) bytes[count] = this.mem.read8(phys2 + count - first);
    let insn: Insn;
    try {
      insn = decodeOne(count === 15 ? bytes : bytes.slice(0, count), rip, bitness);
    } catch (e) {
      if (e instanceof NeedMoreBytes && fetchFault) throw fetchFault;
      throw e;
    }
    const exec = this.hooks.handlerFor(insn);
    let decoded = withHandler.get(insn);
    if (decoded === undefined || decoded.exec !== exec) {
      decoded = { ...insn, exec };
      withHandler.set(insn, decoded);
    }
    key[0] = rip;
    key[1] = this.seg[SEG.CS]!.base;
    const entry: FetchEntry = {
      insn: decoded, ripLo: k32[0]!, ripHi: k32[1]!, bitness, csLo: k32[2]!, csHi: k32[3]!,
      gen: this.codeGen, phys, phys2, version, version2,
    };
    this.decodeCache.set(k32[0]!, entry);
    this.recent[k32[0]! & (RECENT_SIZE - 1)] = entry;
    return decoded;
  }

  /** Was `e` fetched at the RIP and CS base in fetchKey, with this code size? */
  private fetchedHere(e: FetchEntry, bitness: number): boolean {
    const k32 = this.fetchKey32;
    return e.ripLo === k32[0] && e.ripHi === k32[1] && e.bitness === bitness && (bitness === 64 || (e.csLo === k32[2] && e.csHi === k32[3]));
  }

  private watchCodePage(page: number): void {
    this.mem.watchCode(page, () => {
      this.codeVersion.set(page, (this.codeVersion.get(page) ?? 0) + 1);
      this.flushDecodeCache();
    });
  }

  /**
   * Paging, mode or a code page changed: no decoded instruction may be used before it is
   * re-validated (see codeGen).
   */
  flushDecodeCache(): void {
    this.codeGen++;
  }
}

export function isCanonical(v: bigint): boolean {
  const top = v >> 47n;
  return top === 0n || top === 0x1ffffn;
}

/**
 * isCanonical for an address known to be in [0, 2^64) (offsets are wrapped to the address size
 * before they reach Cpu.linear), tested on the high half as a number (see low32): it runs on
 * every memory access.
 */
function canonicalAddress(v: bigint): boolean {
  scratch64[0] = v;
  const top = scratch32[1]! >>> 15;
  return top === 0 || top === 0x1ffff;
}

/** Is the last byte of an access of `size` bytes at canonical `lin` canonical too (it may cross into the hole)? */
function endCanonical(lin: bigint, size: number): boolean {
  scratch64[0] = lin;
  const end = scratch32[0]! + size - 1;
  const hi = end > 0xffff_ffff ? (scratch32[1]! + 1) >>> 0 : scratch32[1]!;
  const top = hi >>> 15;
  return top === 0 || top === 0x1ffff;
}
