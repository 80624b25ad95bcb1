// `svmconf parse-log`: a captured serial log of the suite image (e.g. a LAVA job's) as the console
// backend's run, with the model run beside it (suite/run.ts parseLog), printed as `run` prints.

import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { ROOT } from '../../generator/index.ts';
import { DEFAULT_PROFILE } from '../../model/profile.ts';
import { parseLog } from '../../suite/run.ts';
import { createProgress } from '../progress.ts';
import { interruptible, repeat, selection, type SetCode } from './common.ts';
import { printRun } from './run.ts';

export function register(p: Command, setCode: SetCode): void {
  selection(p.command('parse-log').description("turn a captured serial log of the suite image (e.g. a LAVA job's) into results.json, with the model run beside it"))
    .argument('<log>', 'the console log (raw bytes as captured: escape sequences, CR/LF and noise are cleaned)')
    .option('--machine-cpu <eax>', "the machine's CPUID Fn0000_0001 EAX (e.g. 0x00A10F11): its family in results.json and the model's profile")
    .option('--machine-name <name>', "the machine's CPU name (e.g. 'AMD EPYC 9654 96-Core Processor'), with --machine-cpu")
    .option('--profile <name>', "the model's profile (default: the family table's profile for --machine-cpu, else " + DEFAULT_PROFILE.name + ')')
    .option('--no-model', 'only the log\'s results, no model run')
    .option('--out <dir>', 'where results.json and matrix.md go', join(ROOT, 'out'))
    .option('--deviations <file>', "a deviation registry added to expected/deviations.yaml and the --templates folders' deviations.yaml (repeatable)", repeat, [])
    .option('--json', 'print results.json to stdout instead of the table')
    .option('--verbose', 'the table: also one line per case (as `run --verbose`)')
    .action(async (log: string, o) => {
      setCode(printRun(await interruptible((signal) => parseLog(resolve(log), { ...o, out: resolve(o.out), signal }, (total) => createProgress(total))), o.json, o.verbose === true));
    });
}
