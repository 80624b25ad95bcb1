// `svmconf run`: the cases on the backends, the matrix on the terminal, results.json and
// matrix.md in --out (the pipeline is suite/run.ts; this module has its options and the printing).

import { Option, type Command } from 'commander';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT } from '../../generator/index.ts';
import { DEFAULT_PROFILE } from '../../model/profile.ts';
import { serializeResults } from '../../report/results.ts';
import { printTable } from '../../report/table.ts';
import { renderKtap } from '../../report/ktap.ts';
import { runSuite, type RunOptions, type RunOutcome } from '../../suite/run.ts';
import { createProgress } from '../progress.ts';
import { collect, interruptible, positiveInt, repeat, selection, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  selection(p.command('run').description('run the cases on the backends and report the matrix'))
    .option('--backend <names>', 'backends to use (repeatable, comma-separated; default: all but model-l0 and kvm-tcg, which run only when named)', collect, [])
    .addOption(new Option('--jobs <n>', 'kernels run at once').argParser(positiveInt).default(availableParallelism()))
    .addOption(new Option('--timeout <seconds>', 'a boot with no output for this long is TIMEOUT').argParser(positiveInt).default(30))
    .option('--out <dir>', 'where results.json and matrix.md go', join(ROOT, 'out'))
    .option('--deviations <file>', "a deviation registry added to expected/deviations.yaml and the --templates folders' deviations.yaml (repeatable)", repeat, [])
    .option('--profile <name>', `CPU profile of the model backend (see \`svmconf profiles\`; default: the family table's profile for the CPU of a kvm/console backend, else ${DEFAULT_PROFILE.name})`)
    .option('--machine-cpu <eax>', "console backend: the machine's CPUID Fn0000_0001 EAX (e.g. 0x00A00F11), for its CPU family in results.json")
    .option('--machine-name <name>', "console backend: the machine's CPU name (e.g. 'AMD EPYC 9654 96-Core Processor'), with --machine-cpu")
    .option('--json', 'print results.json to stdout instead of the table (--format json)')
    .option('--verbose', 'the table: also one line per case and each known deviation\'s cases and evidence (matrix.md has them always)')
    .addOption(new Option('--format <format>', 'what goes to stdout: the table, results.json, or KTAP version 1 (one subtest per column, one test per case: docs/publishing.md "KTAP")').choices(['table', 'json', 'ktap']).default('table'))
    .option('--console-cmd <command>', "console backend: shell command attaching to the serial console of a machine that boots the image of `svmconf iso` (e.g. 'ipmitool -I lanplus -H bmc -U admin -P pw sol activate')")
    .option('--boot-cmd <command>', 'console backend: shell command that boots the machine, run once the console is attached')
    .option('--torture', 'kvm and kvm-tcg backends: save the whole vCPU, destroy the VM, create a new one and restore, at every exit and at timer signals 5 ms apart (also SVMCONF_KVM_TORTURE=1)')
    .addOption(new Option('--torture-every <n>', 'with --torture: at every nth exit only (the timer still fires); for the slow kvm-tcg').argParser(positiveInt))
    .option('--torture-control', 'with --torture: the control run, the same forced exits without the save/restore (tells a record changed by the restore from one changed by the interruption)')
    .option('--console-log <file>', 'console backend: read a saved serial log of one boot of the image instead of a live console')
    .action(async (o) => setCode(await run({ ...o, out: resolve(o.out) })));
}

export async function run(o: RunOptions & { json?: boolean; format?: OutputFormat; verbose?: boolean }): Promise<number> {
  return printRun(await interruptible((signal) => runSuite({ ...o, signal }, (total) => createProgress(total))), o.json ? 'json' : o.format, o.verbose === true);
}

export type OutputFormat = 'table' | 'json' | 'ktap';

/** What `run` and `parse-log` print: results.json (--json), or the table (the per-case lines with `verbose`), the run's family, the recorded hardware and the files written. */
export function printRun(r: RunOutcome, format: OutputFormat | boolean | undefined, verbose = false): number {
  const { results, deviations, comparison, family } = r;
  const f: OutputFormat = format === true ? 'json' : format === false || format === undefined ? 'table' : format;
  if (f === 'json') process.stdout.write(serializeResults(results));
  else if (f === 'ktap') process.stdout.write(renderKtap(results, comparison));
  else {
    printTable(results, process.stdout, { deviations, comparison, verbose });
    process.stdout.write(`\nCPU family of this run: ${family.familyName} (${family.source})${r.recordedRuns ? '' : `; no recorded hardware under expected/hw/${family.familySlug}/`}\n`);
    if (r.recordedSection.length) process.stdout.write(`\n${r.recordedSection.join('\n')}`);
    if (!r.writeFailure) process.stdout.write(`\nwrote ${r.paths.results} and ${r.paths.matrix}\n`);
  }
  if (r.writeFailure) process.stderr.write(`svmconf: ${r.writeFailure}\n`);
  return r.exitCode;
}
