// What the command modules share: the exit codes (documented in bin/cli.ts), how a command hands
// its code back to the CLI, the case-selection options and the option parsers.

import { Command, InvalidArgumentError } from 'commander';
import { relative, resolve } from 'node:path';

/** The exit codes, bin/cli.ts's header says what each means. */
export const EXIT = { AGREE: 0, DIVERGE: 1, ERROR: 2, USAGE: 3 } as const;

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
