// What a command works on, from its options: the cases (templates, --filter), a CPU profile by
// name, and the deviation registry. Each says plainly what was wrong with the option (UsageError),
// or, for the registry, the file and line (report/deviations.ts DeviationError).

import { stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Case } from '../core/types.ts';
import { expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { findProfile, profileNames, type Profile } from '../model/profile.ts';
import { loadDeviations, type Deviation } from '../report/deviations.ts';
import { UsageError } from './errors.ts';

export interface CaseSelection {
  /** Extra template folders (--templates). */
  templates: string[];
  /** Case id globs (--filter); none: every case. */
  filter: string[];
}

/** Each --templates folder exists and is a folder (said as a usage error before anything loads). */
async function checkTemplateDirs(dirs: readonly string[]): Promise<void> {
  for (const d of dirs) {
    const s = await stat(d).catch(() => undefined);
    if (!s) throw new UsageError(`--templates ${d}: no such folder`);
    if (!s.isDirectory()) throw new UsageError(`--templates ${d}: not a folder`);
  }
}

export async function selectCases(o: CaseSelection): Promise<Case[]> {
  await checkTemplateDirs(o.templates);
  const cases = filterCases(expandAll(await loadTemplates(o.templates)), o.filter);
  if (cases.length === 0) throw new UsageError(`no case matches ${o.filter.length ? o.filter.join(', ') : 'the templates'}`);
  return cases;
}

export function profileOption(name: string): Profile {
  const p = findProfile(name);
  if (!p) throw new UsageError(`unknown profile ${name} (known: ${profileNames().join(', ')})`);
  return p;
}

/** expected/deviations.yaml, or the file given with --deviations (which must then exist). */
export async function loadRegistry(file: string | undefined): Promise<Deviation[]> {
  const path = resolve(file ?? join(ROOT, 'expected', 'deviations.yaml'));
  const shown = relative(process.cwd(), path) || path;
  return loadDeviations(path, { optional: file === undefined, displayPath: shown.startsWith('..') ? path : shown });
}
