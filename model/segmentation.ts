// Segmentation (APM vol. 2 ch. 4): descriptor-table reads and the hidden state a selector load
// produces. Descriptor-table accesses are implicit supervisor accesses whatever the CPL
// (APM vol. 2 5.6.? "supervisor accesses"), which is why they bypass Cpu.read.

import { ATTR, type Segment } from './cpu/state.ts';
import type { Cpu } from './cpu/cpu.ts';
import { Fault } from './cpu/fault.ts';
import { VEC } from '../arch/x86.ts';

/** Selector fields (APM vol. 2 4.5.1). */
export const SELECTOR = { RPL_MASK: 3, TI: 4, INDEX_MASK: 0xfff8 } as const;

export interface Descriptor {
  /** Bytes 0–7 of the descriptor. */
  low: bigint;
  /** Bytes 8–15 for system descriptors in long mode (gates, TSS, LDT), else 0. */
  high: bigint;
}

/** The descriptor a selector names, or throw #GP(selector) when it lies beyond the table limit. */
export function readDescriptor(cpu: Cpu, selector: number, wide = false, errorVector: number = VEC.GP): Descriptor {
  const table = selector & SELECTOR.TI ? cpu.ldtr : undefined;
  const base = table ? table.base : cpu.gdtr.base;
  const limit = table ? table.limit : cpu.gdtr.limit;
  const offset = selector & SELECTOR.INDEX_MASK;
  const size = wide ? 16 : 8;
  if (offset + size - 1 > limit) throw new Fault(errorVector, selector & 0xfffc);
  const lin = base + BigInt(offset);
  const low = cpu.readLinear(lin, 8, 0);
  const high = wide ? cpu.readLinear(lin + 8n, 8, 0) : 0n;
  return { low, high };
}

/** Attributes in the VMCB layout (descriptor bits 47:40 and 55:52) of a descriptor's low quadword. */
export function attribOf(low: bigint): number {
  return Number((low >> 40n) & 0xffn) | (Number((low >> 52n) & 0xfn) << 8);
}

/** Hidden state of a code/data descriptor: base, byte-granular limit, attributes (APM vol. 2 4.7). */
export function segmentFromDescriptor(selector: number, d: Descriptor): Segment {
  const low = d.low;
  const base = ((low >> 16n) & 0xff_ffffn) | (((low >> 56n) & 0xffn) << 24n);
  let limit = Number((low & 0xffffn) | (((low >> 48n) & 0xfn) << 16n));
  const attrib = attribOf(low);
  if (attrib & ATTR.G) limit = limit * 4096 + 0xfff;
  return { selector, base, limit: limit >>> 0, attrib };
}

/** 64-bit system descriptor base (TSS, LDT: APM vol. 2 4.8.3). */
export function systemBase(d: Descriptor): bigint {
  const low = d.low;
  return ((low >> 16n) & 0xff_ffffn) | (((low >> 56n) & 0xffn) << 24n) | ((d.high & 0xffff_ffffn) << 32n);
}

export function dplOf(attrib: number): number {
  return (attrib >> ATTR.DPL_SHIFT) & 3;
}

export function isCode(attrib: number): boolean {
  return (attrib & ATTR.S) !== 0 && (attrib & ATTR.TYPE_CODE) !== 0;
}
