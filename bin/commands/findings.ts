// `svmconf findings`: docs/findings.md rendered from the findings register (expected/findings.yaml)
// and the deviation registry (report/findings.ts), with expected/findings-notes.md at its end; `--check` fails when the page is not what the two
// files give, so the page can never say something the register and the entries do not.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ROOT } from '../../generator/index.ts';
import { loadFindings, renderFindings } from '../../report/findings.ts';
import { writeFileAtomic } from '../../report/results.ts';
import { loadRegistry } from '../../suite/select.ts';
import { EXIT, type SetCode } from './common.ts';

export const FINDINGS_FILE = join(ROOT, 'expected', 'findings.yaml');
export const FINDINGS_PAGE = join(ROOT, 'docs', 'findings.md');
/** Leads and routes that are not findings yet, appended to the page as written. */
export const FINDINGS_NOTES = join(ROOT, 'expected', 'findings-notes.md');

export function register(p: Command, setCode: SetCode): void {
  p.command('findings')
    .description('render docs/findings.md from expected/findings.yaml and expected/deviations.yaml (--check: fail if it is stale)')
    .option('--check', 'write nothing; exit 1 when docs/findings.md differs from what the register gives')
    .action(async (o) => setCode(await findings(o)));
}

export async function findings(o: { check?: boolean }): Promise<number> {
  const registry = await loadRegistry();
  const list = await loadFindings(FINDINGS_FILE, registry);
  const notes = await readFile(FINDINGS_NOTES, 'utf8').catch(() => '');
  const page = renderFindings(list, registry, notes);
  if (o.check) {
    const now = await readFile(FINDINGS_PAGE, 'utf8').catch(() => '');
    if (now === page) {
      process.stdout.write(`docs/findings.md is current: ${list.length} findings over ${registry.length} registry entries\n`);
      return EXIT.AGREE;
    }
    process.stderr.write('svmconf: docs/findings.md is not what expected/findings.yaml and expected/deviations.yaml give: run `svmconf findings`\n');
    return EXIT.DIVERGE;
  }
  await writeFileAtomic(FINDINGS_PAGE, page);
  process.stdout.write(`wrote docs/findings.md: ${list.length} findings over ${registry.length} registry entries\n`);
  return EXIT.AGREE;
}
