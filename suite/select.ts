// What a command works on, from its options: the cases (templates, --filter), a CPU profile by
// name, and the deviation registry. Each says plainly what was wrong with the option (UsageError),
// or, for the registry, the file and line (report/deviations.ts DeviationError).

import { existsSync } from 'node:fs';
import { linkFindings, loadFindings } from '../report/findings.ts';
import { stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Case } from '../core/types.ts';
import { expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { findProfile, profileNames, type Profile } from '../model/profile.ts';
import { loadDeviations, mergeRegistries, type Deviation } from '../report/deviations.ts';
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

/** The file name a template folder's own registry has (docs/templates.md "Deviations of a template folder"). */
export const FOLDER_REGISTRY = 'deviations.yaml';

export interface RegistrySources {
  /** --deviations files: each must exist. */
  files?: readonly string[];
  /** --templates folders: each one's deviations.yaml, when it has one. */
  templateDirs?: readonly string[];
}

/**
 * The deviation registry: expected/deviations.yaml, each template folder's deviations.yaml and the
 * --deviations files, merged (report/deviations.ts mergeRegistries: an entry id in two files is an
 * error naming both). A file named twice is read once.
 */
export async function loadRegistry(sources: RegistrySources = {}): Promise<Deviation[]> {
  const wanted = [
    { path: join(ROOT, 'expected', 'deviations.yaml'), optional: true },
    ...(sources.templateDirs ?? []).map((d) => ({ path: join(d, FOLDER_REGISTRY), optional: true })),
    ...(sources.files ?? []).map((f) => ({ path: f, optional: false })),
  ];
  const read = new Set<string>();
  const registries: Deviation[][] = [];
  for (const w of wanted) {
    const path = resolve(w.path);
    if (read.has(path)) continue;
    read.add(path);
    const shown = relative(process.cwd(), path) || path;
    registries.push(await loadDeviations(path, { optional: w.optional, displayPath: shown.startsWith('..') ? path : shown }));
  }
  const merged = mergeRegistries(registries);
  // the findings register links each entry to its finding (report/findings.ts); entries of other registries may have none
  const findings = join(ROOT, 'expected', 'findings.yaml');
  if (existsSync(findings)) linkFindings(merged, await loadFindings(findings, merged, 'expected/findings.yaml', { complete: false }));
  return merged;
}
