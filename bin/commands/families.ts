// `svmconf families`: the family table of model/profiles/families.ts, or one CPU classified.

import type { Command } from 'commander';
import type { CpuIdentity } from '../../core/types.ts';
import { classifyCpu, FAMILY_TABLE, familyLabel } from '../../model/profiles/families.ts';
import { parseMachineCpu } from '../../runner/cpu.ts';
import { UsageError } from '../../suite/errors.ts';
import { EXIT, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('families')
    .description('the CPU family table: (vendor, family, model range) -> family name and model profile, with sources; --cpu classifies one CPU')
    .option('--cpu <eax>', 'classify CPUID Fn0000_0001 EAX (e.g. 0x00A10F11; VENDOR:0x… for another vendor)')
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await families(o)));
}

export async function families(o: { cpu?: string; json?: boolean }): Promise<number> {
  if (o.cpu !== undefined) {
    let cpu: CpuIdentity;
    try {
      cpu = parseMachineCpu(o.cpu);
    } catch (e) {
      throw new UsageError((e as Error).message.replace('--machine-cpu', '--cpu'));
    }
    const f = classifyCpu(cpu);
    if (o.json) process.stdout.write(`${JSON.stringify(f, null, 2)}\n`);
    else process.stdout.write(`${familyLabel(f)}: ${f.slug}, profile ${f.profile ?? '(none)'}${f.profileNote ? ` (${f.profileNote})` : ''}\n  source: ${f.source}\n`);
    return EXIT.AGREE;
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(FAMILY_TABLE, null, 2)}\n`);
    return EXIT.AGREE;
  }
  const h = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');
  for (const r of FAMILY_TABLE) {
    const models = r.models.map(([a, b]) => `${h(a)}h-${h(b)}h`).join(', ');
    process.stdout.write(`${r.vendor} family ${h(r.family)}h models ${models}: ${r.name} -> ${r.profile}${r.profileNote ? ` (${r.profileNote})` : ''}\n  parts: ${r.parts}\n  source: ${r.source}\n`);
  }
  return EXIT.AGREE;
}
