// What the command modules share: the exit codes (documented in bin/cli.ts), how a command hands
// its code back to the CLI, the case-selection options and the option parsers.

import { Command, InvalidArgumentError } from 'commander';
import { relative, resolve } from 'node:path';
import { RunInterruptedError } from '../../suite/errors.ts';

/** The exit codes, bin/cli.ts's header says what each means. */
export const EXIT = { AGREE: 0, DIVERGE: 1, ERROR: 2, USAGE: 3 } as const;

/** A run stopped by a signal exits as a shell reports a process killed by it: 128 + its number. */
export const EXIT_INTERRUPTED = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * Run `fn` with an AbortSignal that SIGINT (Ctrl-C) and SIGTERM abort: the run then stops its
 * boots (each kills its VMM's processes and removes its files) and writes what finished
 * (suite/run.ts). A second signal ends the process at once; the VMMs die with it (they run with
 * a parent-death signal, docs/protocol.md "Limits").
 */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const on = (sig: 'SIGINT' | 'SIGTERM') => (): void => {
    if (ac.signal.aborted) process.exit(EXIT_INTERRUPTED[sig]);
    process.stderr.write(`\nsvmconf: ${sig}: stopping the boots in flight and writing what finished (again to quit at once)\n`);
    ac.abort(new RunInterruptedError(`run interrupted by ${sig}`, sig));
  };
  const onInt = on('SIGINT');
  const onTerm = on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await fn(ac.signal);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** Each command's action stores its exit code through this. */
export type SetCode = (code: number) => void;

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** A repeatable, comma-separated option. */
export function collect(value: string, prior: string[]): string[] {
  return [...prior, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** A repeatable option whose values are taken whole (a case id contains commas: never split). */
export function repeat(value: string, prior: string[]): string[] {
  return [...prior, value];
}

/** --templates and --filter (suite/select.ts CaseSelection). */
export function selection(c: Command): Command {
  return c
    .option('--templates <dir>', 'also load templates from this folder (repeatable; its partials/ and deviations.yaml too)', repeat, [])
    .option('--filter <glob>', 'only cases whose id matches a glob (* and ?) or is this id; repeat the option for several (a comma is part of the id, never a separator)', repeat, []);
}

/** A path relative to the working directory when it is below it, else absolute. */
export function shownPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : resolve(p);
}
