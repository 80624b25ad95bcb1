// `svmconf expected`: the golden records, every case on the model under every profile
// (suite/golden.ts), written to expected/<profile>/ or, with --check, compared with it field by
// field (report/golden.ts).

import type { Command } from 'commander';
import { join, relative } from 'node:path';
import { buildKernels, expandAll, loadTemplates } from '../../generator/index.ts';
import { PROFILES } from '../../model/profile.ts';
import { checkProvenance, diffGolden, EXPECTED_DIR, formatDrift, readGoldenDir, readProvenance, writeGolden } from '../../report/golden.ts';
import { runGolden } from '../../suite/golden.ts';
import { profileOption } from '../../suite/select.ts';
import { collect, EXIT, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('expected')
    .description('run every case on the model under every profile and write expected/<profile>/ (the golden records)')
    .option('--profile <names>', 'only these profiles (repeatable, comma-separated)', collect, [])
    .option('--check', 'write nothing: compare with expected/ and print the drift field by field (exit 1 on drift)')
    .action(async (o) => setCode(await expected(o)));
}

export async function expected(o: { profile: string[]; check?: boolean }): Promise<number> {
  const profiles = o.profile.length ? o.profile.map(profileOption) : [...PROFILES];
  // every built-in case, whatever the profile: a case a profile cannot run is recorded UNSUPPORTED
  const cases = expandAll(await loadTemplates());
  const kernels = await buildKernels(cases);
  const layouts = new Map(cases.map((c) => [c.template.id, c.template.record] as const));
  let drifted = 0;
  for (const profile of profiles) {
    const files = await runGolden(kernels, profile);
    const dir = join(EXPECTED_DIR, profile.name);
    if (o.check) {
      const shown = relative(process.cwd(), dir) || dir;
      const drift = [...diffGolden(profile.name, await readGoldenDir(dir), files, layouts, shown), ...checkProvenance(profile, await readProvenance(dir), shown)];
      drifted += drift.length;
      if (drift.length) process.stdout.write(`${formatDrift(drift)}\n`);
      else process.stdout.write(`${profile.name}: the model's records equal ${shown}\n`);
      continue;
    }
    const w = await writeGolden(profile, files, { command: `svmconf expected${o.profile.length ? ` --profile ${o.profile.join(',')}` : ''}` });
    const counts = new Map<string, number>();
    for (const f of files.values()) for (const e of f.cases) counts.set(e.status, (counts.get(e.status) ?? 0) + 1);
    const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
    process.stdout.write(`${profile.name}: ${summary}; ${w.changed.length ? `${w.changed.length} file(s) changed` : 'no record changed'}${w.provenanceWritten ? ', PROVENANCE.json written' : ''}\n`);
  }
  if (o.check && drifted > 0) return EXIT.DIVERGE;
  if (!o.check) process.stdout.write('review the change with `git diff expected/` before committing it\n');
  return EXIT.AGREE;
}
