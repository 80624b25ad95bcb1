// `svmconf build`: render, assemble and link the kernels (cached under build/).

import type { Command } from 'commander';
import { buildKernels } from '../../generator/index.ts';
import { selectCases, type CaseSelection } from '../../suite/select.ts';
import { EXIT, selection, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  selection(p.command('build').description('render, assemble and link the kernels (cached under build/)'))
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await build(o)));
}

export async function build(o: CaseSelection & { json?: boolean }): Promise<number> {
  const cases = await selectCases(o);
  const kernels = await buildKernels(cases, { extraDirs: o.templates });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(kernels.map((k) => ({ id: k.id, elf: k.elf, bin: k.bin, cpu: k.cpu, cases: k.cases.map((c) => c.id) })), null, 2)}\n`);
  } else {
    for (const k of kernels) process.stdout.write(`${k.id}  ${k.cases.length} case(s)  ${k.elf}\n`);
    process.stdout.write(`${kernels.length} kernel(s), ${cases.length} case(s)\n`);
  }
  return EXIT.AGREE;
}
