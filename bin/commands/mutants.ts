// `svmconf mutants`: the kill table of the mutant campaign (suite/mutants.ts); exit 1 if a mutant
// survives or the correct L0 is not transparent.

import { Option, type Command } from 'commander';
import { availableParallelism } from 'node:os';
import { buildKernels } from '../../generator/index.ts';
import { DEFAULT_PROFILE } from '../../model/profile.ts';
import { isMutantName, type MutantName } from '../../model/mutants.ts';
import { UsageError } from '../../suite/errors.ts';
import { allMutantNames, formatKillTable, runMutants, survivors } from '../../suite/mutants.ts';
import { profileOption, selectCases, type CaseSelection } from '../../suite/select.ts';
import { collect, EXIT, positiveInt, selection, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  selection(p.command('mutants').description('run the cases under each mutant (model/mutants.ts) and print the kill table'))
    .option('--mutant <names>', 'only these mutants (repeatable, comma-separated; default: all)', collect, [])
    .option('--profile <name>', 'CPU profile of the model', DEFAULT_PROFILE.name)
    .option('--first-kill', 'stop each mutant at the first batch of kernels that kills it (faster; counts are first kills)')
    .addOption(new Option('--jobs <n>', 'kernels run at once').argParser(positiveInt).default(availableParallelism()))
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await mutants(o)));
}

export async function mutants(o: CaseSelection & { mutant: string[]; profile: string; jobs: number; json?: boolean; firstKill?: boolean }): Promise<number> {
  const profile = profileOption(o.profile);
  const unknown = o.mutant.filter((m) => !isMutantName(m));
  if (unknown.length) throw new UsageError(`unknown mutant ${unknown.join(', ')} (known: ${allMutantNames().join(', ')})`);
  const chosen = o.mutant.length ? (o.mutant as MutantName[]) : allMutantNames();
  const kernels = await buildKernels(await selectCases(o), { extraDirs: o.templates });
  const report = await runMutants(kernels, { profile, mutants: chosen, jobs: o.jobs, firstKill: o.firstKill });
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`profile ${report.profile}, ${report.cases} case(s)\n${formatKillTable(report)}`);
  const { survived, opaque } = survivors(report);
  if (!o.json && survived.length) process.stdout.write(`surviving: ${survived.join(', ')}\n`);
  if (!o.json && opaque) process.stdout.write('the correct L0 changed records: see the (none) row (--json for the fields)\n');
  return survived.length || opaque ? EXIT.DIVERGE : EXIT.AGREE;
}
