// `svmconf list`: the cases, with counts per template and parameter value.

import type { Command } from 'commander';
import type { Case } from '../../core/types.ts';
import { axisCounts, formatAxisCounts } from '../../report/axes.ts';
import { selectCases, type CaseSelection } from '../../suite/select.ts';
import { EXIT, selection, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  selection(p.command('list').description('list the cases, with counts per template and parameter value'))
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await list(o)));
}

export async function list(o: CaseSelection & { json?: boolean }): Promise<number> {
  const cases = await selectCases(o);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(cases.map((c) => ({ id: c.id, template: c.template.id, params: c.params, requires: c.requires })), null, 2)}\n`);
    return EXIT.AGREE;
  }
  const byTemplate = new Map<string, Case[]>();
  for (const c of cases) byTemplate.set(c.template.id, [...(byTemplate.get(c.template.id) ?? []), c]);
  for (const [tid, cs] of byTemplate) {
    const t = cs[0]!.template;
    const reqs = t.requires.map((r) => `${r.present ? '' : '!'}${r.feature}`).join(' ');
    process.stdout.write(`${tid}  ${cs.length} case(s)  ${t.displayPath}${reqs ? `  requires: ${reqs}` : ''}\n  ${t.title}\n`);
    for (const { name, values } of t.matrix) {
      const counts = values.map((v) => `${v}:${cs.filter((c) => c.params[name] === v).length}`);
      process.stdout.write(`    ${name}: ${counts.join(' ')}\n`);
    }
    for (const c of cs) process.stdout.write(`    ${c.id}\n`);
  }
  process.stdout.write(`${cases.length} case(s) in ${byTemplate.size} template(s); cases per axis value, over all templates:\n`);
  for (const line of formatAxisCounts(axisCounts(cases))) process.stdout.write(`${line}\n`);
  return EXIT.AGREE;
}
