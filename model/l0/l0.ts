// The virtual L0: the model run as the guest of a hypervisor that has not mapped the guest's pages
// yet, the way KVM runs a guest whose memory it faults in on first touch (docs/model.md "The virtual
// L0", "Warm and cold pages": first-touch pages must be transparent). Nothing in the CPU knows about it; it sits under
// the machine (machine.ts OuterHypervisor): it watches every translated physical address and takes
// what escapes a step.
//
// Mapping policy (the model's stand-in for L0's nested page tables):
//  - L1 (host mode): a page is mapped by L0 on the first access L1 makes to it, whatever the access;
//    L1 loading CR3, IDTR or GDTR drops them all (an adversary standing in for an L0 that rebuilds
//    or write-protects what shadows the guest's system structures: the worst case, which makes the
//    first event of every case cold, since the runtime loads all three at each case's start);
//  - L2 (guest mode): L0 keeps separate mappings for the nested guest, dropped at every VMRUN (a
//    fresh shadow of L1's world for each L2 entry), so the pages an L2 event touches first are cold.
// An access to an unmapped page outside event delivery costs L0 an exit the guest cannot see (the
// instruction is restarted once the page is mapped): the model just marks the page. During event
// delivery (cpu.delivering) the exit interrupts the delivery: L0Exit is thrown with the event as
// EXITINTINFO would show it, and reinject.ts does what the hypervisor must do — re-inject the
// event through EVENTINJ so that the guest cannot tell (APM vol. 2 15.7.2, 15.20).
// Page-table walks are not watched (the hypervisor's faults on them would be transparent too).

import type { Cpu, CpuHooks } from '../cpu/cpu.ts';
import { AccessAbort, Fault } from '../cpu/fault.ts';
import type { Event } from '../events/classes.ts';
import type { OuterHypervisor } from '../machine.ts';
import { guestOf, type GuestMode } from '../svm/guest.ts';
import { exitIntInfoOf } from '../svm/inject.ts';
import { EFER, EVENT_TYPE, SEG_ATTRIB, VMCB_SAVE, isSoftEvent, parseEventInfo } from '../../arch/svm.ts';
import { linearCodeAddress } from '../cpu/linear.ts';
import type { MutantName } from '../mutants.ts';
import { completeSoftEvent, reinject, type L0Context, type SoftEventState } from './reinject.ts';

const PAGE = 4096;

/** L0 took an exit on a page it had not mapped, in the middle of delivering `during`. */
export class L0Exit extends AccessAbort {
  constructor(readonly during: Event, readonly pa: number) {
    super(`L0 exit: page 0x${(pa - (pa % PAGE)).toString(16)} unmapped while delivering vector ${during.vector} (${during.kind})`);
    this.name = 'L0Exit';
  }
}

export interface L0Options {
  /** NRIPS of the hardware L0 runs on (the profile before any feature is hidden from L1). */
  nrips: boolean;
  mutants?: Iterable<MutantName>;
}

/** What the L0 did in a run, for tests and the transparency report. */
export interface L0Stats {
  /** Exits taken while an event was being delivered. */
  exits: number;
  /** Events re-injected through EVENTINJ. */
  reinjected: number;
  /** Events dropped so that the instruction runs again (mutants retry-*). */
  retried: number;
}

export class VirtualL0 implements OuterHypervisor, L0Context {
  readonly stats: L0Stats = { exits: 0, reinjected: 0, retried: 0 };
  readonly nrips: boolean;
  private readonly mutants: readonly MutantName[];
  private readonly mappedL1 = new Set<number>();
  private readonly mappedL2 = new Set<number>();
  /** The guest mode last seen (a new object at every VMRUN), to notice L2 entries and exits. */
  private guest: GuestMode | undefined;
  /** KVM's soft_int_{old_rip,next_rip,csbase}: the soft event last injected, until the next exit. */
  soft: SoftEventState | undefined;

  constructor(opts: L0Options) {
    this.nrips = opts.nrips;
    this.mutants = [...(opts.mutants ?? [])];
  }

  wrapTranslate(inner: CpuHooks['translate']): CpuHooks['translate'] {
    return (cpu, lin, access) => {
      const pa = inner(cpu, lin, access);
      this.touch(cpu, pa);
      return pa;
    };
  }

  onEscape(cpu: Cpu, e: unknown): boolean {
    if (!(e instanceof L0Exit)) return false;
    let exit: L0Exit = e;
    // re-injection may itself take an exit on the next cold page: one page per exit, so this ends
    for (;;) {
      try {
        this.handle(cpu, exit);
        return true;
      } catch (again) {
        if (again instanceof L0Exit) {
          exit = again;
          continue;
        }
        // what a step does with an abort that is no guest exception (a nested page fault): the
        // guest-mode layer turns it into an exit to L1 (events/boundary.ts step)
        if (again instanceof AccessAbort && !(again instanceof Fault) && cpu.eventHooks?.onAbort?.(cpu, again)) return true;
        throw again;
      }
    }
  }

  private handle(cpu: Cpu, exit: L0Exit): void {
    this.stats.exits++;
    const soft = this.soft;
    this.soft = undefined; // consumed by every exit (svm_complete_interrupts)
    const info = parseEventInfo(exitIntInfoOf(exit.during)); // EXITINTINFO: the event under delivery (15.7.2)
    const nextRip = completeSoftEvent(cpu, this, info, soft);
    reinject(cpu, this, info, exit.during, nextRip);
  }

  count(outcome: 'reinjected' | 'retried'): void {
    this.stats[outcome]++;
  }

  /** Is this L0 mutant on? (The SVM model's mutants are set on the CPU: model/mutants.ts setMutants.) */
  mutant(name: MutantName): boolean {
    return this.mutants.includes(name);
  }

  /**
   * After each step: a VMRUN or #VMEXIT it made (seen here before L1's next instruction, whatever
   * that does), and L1 loading CR3, IDTR or GDTR, which drops L1's mappings (see the header).
   */
  afterStep(cpu: Cpu): void {
    const g = guestOf(cpu);
    if (g !== this.guest) this.switchWorld(g);
    const insn = cpu.current;
    if (insn === undefined || g !== undefined) return;
    if (insn.mnemonic === 'Lidt' || insn.mnemonic === 'Lgdt') {
      this.mappedL1.clear();
    } else if (insn.mnemonic === 'Mov') {
      const dst = insn.ops[0];
      if (dst?.kind === 'reg' && dst.reg.kind === 'cr' && dst.reg.index === 3) this.mappedL1.clear();
    }
  }

  private touch(cpu: Cpu, pa: number): void {
    const g = guestOf(cpu);
    if (g !== this.guest) this.switchWorld(g);
    const pages = g ? this.mappedL2 : this.mappedL1;
    const page = Math.floor(pa / PAGE);
    if (pages.has(page)) return;
    pages.add(page);
    if (cpu.delivering !== undefined) throw new L0Exit(cpu.delivering, pa);
  }

  /**
   * VMRUN or #VMEXIT happened since the last access (L0 emulates both for L1). At VMRUN: fresh L2
   * mappings, and an L1-injected soft event remembered with vmcb12's RIP, CS base and next_rip
   * (KVM nested_vmcb02_prepare_control: with NRIPS exposed to L1 its next_rip, else its RIP).
   */
  private switchWorld(g: GuestMode | undefined): void {
    if (this.guest) this.reflectExit(this.guest);
    this.guest = g;
    this.soft = undefined;
    if (!g) return;
    this.mappedL2.clear();
    const inj = parseEventInfo(g.ctl.eventInj);
    if (!inj.valid || !isSoftEvent(inj)) return;
    const rip = g.vmcb.u64(VMCB_SAVE.RIP);
    const cs = g.vmcb.segment(VMCB_SAVE.CS);
    // kvm_get_linear_rip: the CS base counts outside 64-bit mode only
    const long64 = (cs.attrib & SEG_ATTRIB.L) !== 0 && (g.vmcb.u64(VMCB_SAVE.EFER) & EFER.LMA) !== 0n;
    let nextRip = g.nrips ? g.ctl.nextRip : rip;
    if (this.mutant('reinject-drops-next-rip')) nextRip = rip;
    this.soft = { oldRip: rip, nextRip, csBase: long64 ? 0n : cs.base };
  }

  /**
   * L2 exited to L1 (an exit L0 reflects): L0 completes the interrupted event first, as at its own
   * exits (KVM runs svm_complete_interrupts on vmcb02 before nested_svm_vmexit copies it to vmcb12).
   * Without NRIPS that unwinds a RIP L0 advanced for a soft event it injected, so L1 sees the RIP of
   * the instruction, as the processor alone would report it. Runs right after the step that made
   * the exit (afterStep), before L1 runs again.
   */
  private reflectExit(g: GuestMode): void {
    const soft = this.soft;
    if (!soft || this.nrips) return;
    const info = parseEventInfo(g.vmcb.exitIntInfo());
    if (!info.valid || (info.type !== EVENT_TYPE.SOFT_INT && info.type !== EVENT_TYPE.EXCEPTION)) return;
    const rip = g.vmcb.u64(VMCB_SAVE.RIP);
    const cs = g.vmcb.segment(VMCB_SAVE.CS);
    const long64 = (cs.attrib & SEG_ATTRIB.L) !== 0 && (g.vmcb.u64(VMCB_SAVE.EFER) & EFER.LMA) !== 0n;
    const base = this.mutant('ignore-cs-base') ? 0n : soft.csBase;
    if (linearCodeAddress(rip, cs.base, long64) === linearCodeAddress(soft.nextRip, base, long64)) g.vmcb.set64(VMCB_SAVE.RIP, soft.oldRip);
  }
}

