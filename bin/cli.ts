// The svmconf command. Each command is a module of bin/commands/ (its options and its handler):
//   list       the cases, with counts per template and parameter value
//   build      render, assemble and link the kernels (cached under build/)
//   run        run the cases on the backends, print the matrix, write results.json and matrix.md
//   parse-log  a captured serial log of the suite image as results.json, the model beside it
//   iso        the bootable suite image (GRUB, BIOS and UEFI) for the console backend
//   tcghost    build (and with --check boot) the TCG host of the kvm-tcg backend
//   compare    compare the backends of a results.json again
//   mutants    the kill table of the model's mutants
//   publish    merge results files into one matrix per CPU family (md, html, json, junit)
//   record     store a run's hardware records under expected/hw/ with their provenance
//   families   the CPU family table, or one CPU classified
//   profiles   the CPU profiles the model can follow
//   expected   the golden records expected/<profile>/ (write, or --check)
//   backends   what each backend can do on this machine, and why not
//   peers      install the pinned peer versions under build/peers/ (runner/peers/pins.yaml)
//   repro      a folder that reproduces one case on one backend without svmconf (docs/repro.md)
// This file only wires them and maps errors to exit codes.
//
// Exit codes (README "Exit codes"):
//   0  every case that ran on two or more backends agrees (or differs only by known deviations,
//      expected/deviations.yaml), and nothing crashed
//   1  divergences between backends
//   2  errors: CRASH, TIMEOUT, ERROR results, a template that does not build, a tool missing, a
//      backend named with --backend that is not available here
//   3  usage: unknown command or option, bad argument
//   130, 143  run or parse-log stopped by SIGINT (Ctrl-C) or SIGTERM: the boots in flight were
//      killed, results.json and matrix.md hold what finished, marked interrupted

import { Command, CommanderError } from 'commander';
import { BuildError, TemplateError, ToolMissingError } from '../generator/index.ts';
import { ConsoleLogError } from '../runner/backends/console-log.ts';
import { stopTcgHost } from '../runner/backends/kvm-tcg.ts';
import { TcgHostImageError } from '../runner/tcghost/image.ts';
import { DeviationError } from '../report/deviations.ts';
import { FindingError } from '../report/findings.ts';
import { RecordError } from '../report/hwrecords.ts';
import { PublishError } from '../report/publish.ts';
import { ResultsFormatError } from '../report/results.ts';
import { BackendUnavailableError, RunInterruptedError, UsageError } from '../suite/errors.ts';
import { fsErrorText } from '../suite/output.ts';
import { EXIT, EXIT_INTERRUPTED, type SetCode } from './commands/common.ts';
import * as list from './commands/list.ts';
import * as build from './commands/build.ts';
import * as run from './commands/run.ts';
import * as parseLog from './commands/parse-log.ts';
import * as iso from './commands/iso.ts';
import * as tcghost from './commands/tcghost.ts';
import * as compare from './commands/compare.ts';
import * as mutants from './commands/mutants.ts';
import * as publish from './commands/publish.ts';
import * as record from './commands/record.ts';
import * as families from './commands/families.ts';
import * as profiles from './commands/profiles.ts';
import * as expected from './commands/expected.ts';
import * as backends from './commands/backends.ts';
import * as peers from './commands/peers.ts';
import * as findings from './commands/findings.ts';
import * as repro from './commands/repro.ts';

export { EXIT };

/** The commands in the order `svmconf --help` lists them. */
const COMMANDS: ReadonlyArray<{ register(p: Command, setCode: SetCode): void }> = [
  list, build, run, parseLog, iso, tcghost, compare, mutants, publish, record, families, profiles, expected, backends, peers, findings, repro,
];

/** The command tree; each action stores its exit code through `setCode`. */
export function program(setCode: SetCode): Command {
  const p = new Command('svmconf')
    .description('Differential conformance suite for x86 event delivery and AMD SVM event injection')
    .exitOverride()
    .showHelpAfterError();
  for (const c of COMMANDS) c.register(p, setCode);
  return p;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.AGREE;
  const p = program((c) => (code = c));
  try {
    await p.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof TcgHostImageError) {
      process.stderr.write(`svmconf: ${e.message}\n`);
      return EXIT.ERROR;
    }
    if (e instanceof RunInterruptedError) {
      process.stderr.write(`svmconf: ${e.message}\n`);
      return EXIT_INTERRUPTED[e.signal];
    }
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.AGREE : EXIT.USAGE;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`svmconf: ${e.message}\n`);
      return EXIT.USAGE;
    }
    if (e instanceof TemplateError || e instanceof BuildError || e instanceof ToolMissingError || e instanceof DeviationError || e instanceof ResultsFormatError
      || e instanceof FindingError || e instanceof RecordError || e instanceof PublishError || e instanceof ConsoleLogError || e instanceof BackendUnavailableError) {
      process.stderr.write(`svmconf: ${e.message}\n`);
      return EXIT.ERROR;
    }
    // a file-system refusal (a full disk, a read-only folder) is the user's to fix: its path and why
    const fs = fsErrorText(e);
    if (fs) {
      process.stderr.write(`svmconf: ${fs}\n`);
      return EXIT.ERROR;
    }
    process.stderr.write(`svmconf: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.ERROR;
  } finally {
    // the kvm-tcg backend's guest, if a probe started it
    await stopTcgHost();
  }
}

process.exitCode = await main(process.argv);
