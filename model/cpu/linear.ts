// The linear address of an instruction: CS base + RIP (APM vol. 2 4.1–4.3), with the base ignored in
// 64-bit mode, where CS is flat (4.12.1) and RIP is the linear address. Outside 64-bit mode the sum
// wraps at 32 bits. One rule for the instruction breakpoints (events/boundary.ts) and for the virtual
// L0, which recognises a soft event it injected by its linear RIP (l0/reinject.ts, l0/l0.ts).

import type { Cpu } from './cpu.ts';
import { SEG } from './state.ts';

/** The linear address of `rip` in a code segment of base `csBase`; `mode64`: 64-bit mode (CS.L with EFER.LMA). */
export function linearCodeAddress(rip: bigint, csBase: bigint, mode64: boolean): bigint {
  return mode64 ? rip : (csBase + rip) & 0xffff_ffffn;
}

/** The linear address of the CPU's RIP. */
export function linearRip(cpu: Cpu): bigint {
  return linearCodeAddress(cpu.rip, cpu.seg[SEG.CS]!.base, cpu.mode64);
}
