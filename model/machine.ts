// The machine: RAM, COM1, the exit ports, one CPU, and the run loop that executes a multiboot
// kernel until it leaves, shuts down (triple fault) or runs out of its instruction budget.

import { readElf32 } from '../core/elf32.ts';
import { ATTR, GPR, SEG } from './cpu/state.ts';
import { Cpu, type CpuHooks } from './cpu/cpu.ts';
import { ModelStop, Shutdown } from './cpu/fault.ts';
import { PhysicalMemory } from './memory.ts';
import { Serial } from './devices/serial.ts';
import { ExitDevices } from './devices/exit.ts';
import { handlerFor } from './isa/index.ts';
import { translate } from './paging.ts';
import { step } from './events/boundary.ts';
import { type Profile, DEFAULT_PROFILE } from './profile.ts';
import { LOADER, LOADER_SELECTORS, MULTIBOOT } from '../arch/layout.ts';

export interface MachineOptions {
  ramBytes: number;
  profile?: Profile;
  onLine?: (line: string) => void;
  /** A hypervisor below the machine (model/l0/): sees every translation and what escapes a step. */
  outer?: OuterHypervisor;
}

/**
 * What runs beneath the machine when the model plays a guest of its own hypervisor (model/l0/).
 * The machine knows only this interface: the L0 watches the translated physical addresses and
 * gets what a step throws (its own exits) before the run loop gives up.
 */
export interface OuterHypervisor {
  wrapTranslate(inner: CpuHooks['translate']): CpuHooks['translate'];
  /** An error escaped a step; true when it was the hypervisor's own exit and it has been handled. */
  onEscape(cpu: Cpu, e: unknown): boolean;
  /** After every step, its exits handled (what the hypervisor watches besides memory: world switches, CR3 loads). */
  afterStep?(cpu: Cpu): void;
}

export type RunEnd =
  | { end: 'exited'; status: number }
  | { end: 'shutdown'; why: string }
  | { end: 'budget' }
  | { end: 'stopped'; why: string };

/** Where the loader puts the multiboot information structure and the command line (arch/layout.ts). */
const MB_INFO_ADDR = LOADER.MBI_ADDR;
const MB_CMDLINE_ADDR = LOADER.MBI_CMDLINE_ADDR;
const MB_BOOT_MAGIC = BigInt(MULTIBOOT.BOOT_MAGIC);
const MB_INFO_MEMORY = MULTIBOOT.INFO_MEMORY;
const MB_INFO_CMDLINE = MULTIBOOT.INFO_CMDLINE;

/** Instructions per call of Machine.runSlice. */
const RUN_SLICE = 1 << 16;

export class Machine {
  readonly mem: PhysicalMemory;
  readonly cpu: Cpu;
  readonly serial: Serial;
  readonly exits = new ExitDevices();
  readonly profile: Profile;
  private readonly outer: OuterHypervisor | undefined;

  constructor(opts: MachineOptions) {
    this.outer = opts.outer;
    this.mem = PhysicalMemory.pooled(opts.ramBytes);
    this.serial = new Serial(opts.onLine);
    this.profile = opts.profile ?? DEFAULT_PROFILE;
    const hooks: CpuHooks = {
      translate: opts.outer ? opts.outer.wrapTranslate(translate) : translate,
      handlerFor,
      portIn: (port) => (this.serial.owns(port) ? this.serial.in(port) : 0xffffffff),
      portOut: (port, _size, value) => {
        if (this.serial.owns(port)) this.serial.out(port, value);
        else if (this.exits.owns(port)) this.exits.out(port, value);
      },
    };
    this.cpu = new Cpu(this.mem, hooks);
    this.cpu.profile = this.profile;
  }

  /**
   * Load a multiboot ELF32 kernel and put the CPU in the state the Multiboot Specification
   * (0.6.96, 3.2 "Machine state") defines: 32-bit protected mode, flat 4 GiB segments, paging
   * off, interrupts off, EAX = 0x2BADB002, EBX = the information structure.
   */
  loadMultiboot(elf: Uint8Array, cmdline: string): void {
    let image;
    try {
      image = readElf32(elf);
    } catch (e) {
      throw new Error(`kernel is ${(e as Error).message}`);
    }
    const { entry } = image;
    for (const { offset, paddr, filesz, memsz } of image.segments) {
      this.mem.load(paddr, elf.subarray(offset, offset + filesz));
      if (memsz > filesz) this.mem.fill(paddr + filesz, memsz - filesz, 0);
    }
    const cmd = Buffer.from(`${cmdline}\0`, 'latin1');
    this.mem.load(MB_CMDLINE_ADDR, cmd);
    this.mem.write32(MB_INFO_ADDR, MB_INFO_MEMORY | MB_INFO_CMDLINE);
    this.mem.write32(MB_INFO_ADDR + 4, 640);
    this.mem.write32(MB_INFO_ADDR + 8, Math.floor(this.mem.size / 1024) - 1024);
    this.mem.write32(MB_INFO_ADDR + 16, MB_CMDLINE_ADDR);

    const cpu = this.cpu;
    const code32 = ATTR.P | ATTR.S | ATTR.TYPE_CODE | ATTR.TYPE_RW | ATTR.TYPE_ACCESSED | ATTR.DB | ATTR.G;
    const data32 = ATTR.P | ATTR.S | ATTR.TYPE_RW | ATTR.TYPE_ACCESSED | ATTR.DB | ATTR.G;
    cpu.seg.forEach((s, i) => {
      s.selector = i === SEG.CS ? LOADER_SELECTORS.CODE32 : LOADER_SELECTORS.DATA32;
      s.base = 0n;
      s.limit = 0xffff_ffff;
      s.attrib = i === SEG.CS ? code32 : data32;
    });
    cpu.cr0 = 0x11n; // PE, ET
    cpu.rflags = 0x2;
    cpu.gpr[GPR.RAX] = MB_BOOT_MAGIC;
    cpu.gpr[GPR.RBX] = BigInt(MB_INFO_ADDR);
    cpu.rip = BigInt(entry);
  }

  /** Give the guest RAM back to the pool (model/memory.ts); the machine must not run again. */
  dispose(): void {
    this.mem.release();
  }

  /** One instruction, or the delivery of the event it raised (events/boundary.ts). */
  step(): void {
    step(this.cpu);
  }

  run(budget: number): RunEnd {
    try {
      // in slices: a loop that runs for seconds inside one call is compiled on the fly (on-stack
      // replacement), and V8's code for that is slower than for a function it is called into
      for (let n = 0; n < budget; n += RUN_SLICE) {
        const end = this.runSlice(Math.min(RUN_SLICE, budget - n));
        if (end !== undefined) return end;
      }
      return { end: 'budget' };
    } catch (e) {
      if (e instanceof Shutdown) return { end: 'shutdown', why: e.why };
      if (e instanceof ModelStop) return { end: 'stopped', why: e.message };
      throw e;
    }
  }

  /** Up to `count` instructions; how the run ended, or undefined if it has not. */
  private runSlice(count: number): RunEnd | undefined {
    if (this.outer) return this.runSliceOuter(count, this.outer);
    const cpu = this.cpu;
    const exits = this.exits;
    for (let n = 0; n < count; n++) {
      step(cpu);
      if (exits.exited) return { end: 'exited', status: exits.exitStatus! };
      if (cpu.halted) return { end: 'stopped', why: `HLT with interrupts ${cpu.rflags & 0x200 ? 'enabled' : 'disabled'} at ${cpu.rip.toString(16)}` };
    }
    return undefined;
  }

  /** runSlice with a hypervisor beneath: its exits are handled and the loop goes on. */
  private runSliceOuter(count: number, outer: OuterHypervisor): RunEnd | undefined {
    const cpu = this.cpu;
    const exits = this.exits;
    for (let n = 0; n < count; n++) {
      try {
        step(cpu);
      } catch (e) {
        if (!outer.onEscape(cpu, e)) throw e;
      }
      outer.afterStep?.(cpu);
      if (exits.exited) return { end: 'exited', status: exits.exitStatus! };
      if (cpu.halted) return { end: 'stopped', why: `HLT with interrupts ${cpu.rflags & 0x200 ? 'enabled' : 'disabled'} at ${cpu.rip.toString(16)}` };
    }
    return undefined;
  }
}
