// Paging (APM vol. 2 ch. 5): linear → physical. STUB: identity while the paging module is written.
import type { Cpu } from './cpu/cpu.ts';

export function translate(_cpu: Cpu, linear: bigint, _access: number): number {
  return Number(linear & 0xffff_ffffn);
}
