// `svmconf profiles`: the CPU profiles the model can follow (model/profiles/), with their SVM
// CPUID and sources.

import type { Command } from 'commander';
import { DEFAULT_PROFILE, hardwareCpuid, hardwareSvmSwitches, PROFILES, svmFeatureNames } from '../../model/profile.ts';
import { EXIT, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('profiles')
    .description('the CPU profiles (AMD families) the model can follow, with their SVM CPUID and sources')
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await profiles(o)));
}

const hex32 = (v: number) => `0x${(v >>> 0).toString(16)}`;

export async function profiles(o: { json?: boolean }): Promise<number> {
  const rows = PROFILES.map((p) => {
    const svm = hardwareCpuid(p, 0x8000_000a, 0);
    return {
      name: p.name, default: p === DEFAULT_PROFILE, title: p.title ?? '', vendor: p.vendor,
      family: hex32(p.family), model: hex32(p.model), stepping: p.stepping, basis: p.basis ?? 'assembled',
      svm: { revision: svm.eax & 0xff, asids: svm.ebx, edx: hex32(svm.edx), features: svmFeatureNames(p) },
      switches: hardwareSvmSwitches(p),
      sources: p.sources, notes: p.notes ?? [],
    };
  });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return EXIT.AGREE;
  }
  for (const r of rows) {
    process.stdout.write(`${r.name}${r.default ? ' (default)' : ''}  family ${r.family} model ${r.model} stepping ${r.stepping}  [${r.basis}]\n  ${r.title}\n`);
    process.stdout.write(`  SVM rev ${r.svm.revision}, ${r.svm.asids} ASIDs, 8000_000A EDX ${r.svm.edx}: ${r.svm.features.join(' ')}\n`);
    for (const s of r.sources) process.stdout.write(`  source: ${s}\n`);
    for (const n of r.notes) process.stdout.write(`  note: ${n}\n`);
  }
  return EXIT.AGREE;
}
