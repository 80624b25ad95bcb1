// `svmconf compare`: the backends of a results.json compared again, under the registry as it is
// now (table or JSON summary, exit code; matrix.md with --out).

import { versionView } from '../../report/versions.ts';
import { conformance } from '../../report/conformance.ts';
import { renderKtap } from '../../report/ktap.ts';
import type { Command } from 'commander';
import { join } from 'node:path';
import { compareResults, deviationsByCase, runExitCode } from '../../report/compare.ts';
import { writeMarkdown } from '../../report/markdown.ts';
import { readResultsFile } from '../../report/results.ts';
import { printTable } from '../../report/table.ts';
import { compareWarmCold } from '../../report/warmcold.ts';
import { UsageError } from '../../suite/errors.ts';
import { checkOutDir } from '../../suite/output.ts';
import { loadRegistry } from '../../suite/select.ts';
import { repeat, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('compare')
    .description('compare the backends of a results.json again (table, exit code)')
    .argument('<results...>', 'results.json file')
    .option('--out <dir>', 'also write matrix.md there')
    .option('--deviations <file>', 'a deviation registry added to expected/deviations.yaml (repeatable)', repeat, [])
    .option('--json', 'print the summary as JSON')
    .option('--verbose', 'the table: also one line per case and each known deviation\'s cases and evidence')
    .option('--ktap', 'print KTAP version 1 instead of the table (docs/publishing.md "KTAP")')
    .action(async (files: string[], o) => setCode(await compare(files, o)));
}

export async function compare(files: string[], o: { out?: string; json?: boolean; ktap?: boolean; verbose?: boolean; deviations?: string[] }): Promise<number> {
  if (files.length !== 1) throw new UsageError('compare takes one results.json (merging several runs comes with `publish`)');
  if (o.out) await checkOutDir(o.out);
  const results = await readResultsFile(files[0]!);
  // the registry as it is now (not as it was when the results were written)
  const deviations = await loadRegistry({ files: o.deviations ?? [] });
  const comparison = compareResults(results, { deviations });
  // the warm/cold twins compared again too (a results.json from before the comparison has none)
  const warmCold = compareWarmCold(results);
  if (warmCold.pairs > 0) results.warmCold = warmCold;
  if (o.out) await writeMarkdown(join(o.out, 'matrix.md'), results, { deviations, comparison });
  if (o.json) process.stdout.write(`${JSON.stringify({ ...comparison.summary, deviations: deviationsByCase(comparison), versions: versionView(results, comparison, deviations), conformance: conformance(results, comparison, deviations) }, null, 2)}\n`);
  else if (o.ktap) process.stdout.write(renderKtap(results, comparison));
  else printTable(results, process.stdout, { deviations, comparison, verbose: o.verbose === true });
  return runExitCode(comparison.summary, results.warmCold);
}
