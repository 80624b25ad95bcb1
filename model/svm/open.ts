// Outcomes the manual leaves open (docs/svm-rules.md "Open outcomes"): when the model meets a
// situation whose result the APM does not define, it still runs it its own way (a model must
// produce a record) but notes why, and the runner marks the case's result `open`
// (CaseResult.open): its record is then compared on no bit and the matrix shows `open`, never a
// verdict about defined behaviour.
//
// The notes are kept per CPU and taken by whoever reports the case (the model backend, at the
// case's protocol line): a note belongs to the case that was running when it was made.

import type { Cpu } from '../cpu/cpu.ts';

const notes = new WeakMap<Cpu, string[]>();

/** Note that the running case's outcome is open, and why (a sentence naming the APM section). */
export function noteOpenOutcome(cpu: Cpu, why: string): void {
  const list = notes.get(cpu);
  if (list === undefined) notes.set(cpu, [why]);
  else if (!list.includes(why)) list.push(why);
}

/** The notes made since the last call, and forget them. */
export function takeOpenOutcomes(cpu: Cpu): string[] {
  const list = notes.get(cpu) ?? [];
  notes.delete(cpu);
  return list;
}
