// Exception and interrupt delivery (APM vol. 2 ch. 8). STUB while the events module is written.
import type { Cpu } from '../cpu/cpu.ts';
import { ModelStop, type Fault } from '../cpu/fault.ts';

export function deliverFault(_cpu: Cpu, fault: Fault): void {
  throw new ModelStop(`delivery of ${fault.message} is not modelled yet`);
}
