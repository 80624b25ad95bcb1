// `svmconf publish`: one matrix per CPU family from results files of several machines and runs,
// with the recorded hardware of each family (suite/publish.ts); prints one line per family.

import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { ROOT } from '../../generator/index.ts';
import { KCIDB_SCHEMA_NAME } from '../../report/kcidb.ts';
import { publishExitCode } from '../../report/publish.ts';
import { publishRuns } from '../../suite/publish.ts';
import { repeat, shownPath, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('publish')
    .description('merge results.json files from several machines and runs into one matrix per CPU family: matrix.md, matrix.html, matrix.json, junit.xml; with --kcidb also a KCIDB report')
    .argument('<results...>', 'results.json files')
    .option('--out <dir>', 'where the matrix files go', join(ROOT, 'out', 'publish'))
    .option('--deviations <file>', 'a deviation registry added to expected/deviations.yaml (repeatable)', repeat, [])
    .option('--hw <dir>', 'recorded hardware (default: expected/hw)')
    .option('--json', 'print matrix.json to stdout')
    .option('--kcidb <file>', `also write the matrix as a KCIDB report (${KCIDB_SCHEMA_NAME}) to this file, for kcidb-submit`)
    .action(async (files: string[], o) => setCode(await publish(files, { ...o, out: resolve(o.out), ...(o.kcidb ? { kcidb: resolve(o.kcidb) } : {}) })));
}

export async function publish(files: string[], o: { out: string; deviations?: string[]; hw?: string; json?: boolean; kcidb?: string }): Promise<number> {
  const { matrix, paths, notes } = await publishRuns({
    files: files.map((f) => ({ file: f, source: shownPath(f) })),
    deviations: o.deviations ?? [],
    ...(o.hw ? { hw: resolve(o.hw) } : {}),
    out: o.out,
    ...(o.kcidb ? { kcidb: o.kcidb } : {}),
  });
  for (const n of notes) process.stderr.write(`svmconf: ${n}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify(matrix, null, 2)}\n`);
  else {
    for (const f of matrix.families) {
      const v = f.summary.verdicts;
      process.stdout.write(`${f.name} (family ${f.family.toString(16).toUpperCase().padStart(2, '0')}h, ${f.slug}${f.profile ? `, profile ${f.profile}` : ''}): ${f.runs.length} run(s), ${f.columns.length} column(s)${f.recorded.length ? ` incl. ${f.recorded.length} recorded` : ''}, ${f.summary.cases} cases: diverge ${v.diverge}, known ${v.known}, agree ${v.agree}, single ${v.single}, none ${v.none}; problems ${f.summary.problems}; unstable ${f.summary.unstable}\n`);
    }
    process.stdout.write(`wrote ${Object.values(paths).map(shownPath).join(', ')}\n`);
  }
  return publishExitCode(matrix);
}
