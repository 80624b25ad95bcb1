// A run as KTAP version 1 (the kernel's Documentation/dev-tools/ktap.rst), the format kselftest and
// kvm-unit-tests' `run_tests.sh -t` print, so a lab's KTAP tooling reads svmconf's verdicts as it
// reads theirs. docs/publishing.md "KTAP" says how each outcome maps.
//
// Shape: the top level has one test per column (backend); each column is a subtest, indented two
// spaces and opened by its own version line and plan, with one test per case:
//   ok          the record agrees with the reference on every defined bit, or every difference is a
//               known deviation (a diagnostic line before it names the entries), or the outcome is
//               one the manual leaves open (said so the same way), or the column is the reference
//   not ok      the record diverges (the differing fields in diagnostic lines), or the case ended in
//               CRASH, TIMEOUT or ERROR (the reason in a diagnostic line)
//   ok … # SKIP the case did not run there: SKIP or UNSUPPORTED with its reason, or no result
// A column's own result is `not ok` when any of its cases is, else `ok`.

import type { CaseResult, Results } from '../core/types.ts';
import type { CaseComparison, Comparison } from './compare.ts';
import { formatDiff } from './compare.ts';
import { columnOutcome } from './conformance.ts';

/** A description may hold any character but `#` and a newline (ktap.rst, "Test case result lines"). */
export function ktapDescription(s: string): string {
  return s.replace(/#/g, '%23').replace(/[\r\n]+/g, ' ').trim();
}

/** Diagnostic text: one line, after `# `. */
const diag = (indent: string, s: string): string => `${indent}# ${s.replace(/[\r\n]+/g, ' ')}`;

interface CaseLine {
  ok: boolean;
  skip?: string;
  notes: string[];
}

function caseLine(c: CaseComparison, r: CaseResult | undefined, column: string): CaseLine {
  switch (columnOutcome(c, r, column)) {
    case 'missing': return { ok: true, skip: 'no result from this backend', notes: [] };
    case 'notRun': return { ok: true, skip: `${r!.status}${r!.reason ? `: ${r!.reason}` : ''}`, notes: [] };
    case 'problem': return { ok: false, notes: [`${r!.status}${r!.reason ? `: ${r!.reason}` : ''}`] };
    case 'diverge': return { ok: false, notes: c.diffs.filter((d) => d.strict.includes(column)).map((d) => `differs: ${formatDiff(d)}`) };
    case 'known': {
      const ids = [...new Set(c.deviations.filter((m) => m.backend === column || m.against === column).map((m) => m.id))];
      return { ok: true, notes: [`known deviation: ${ids.join(', ')}`] };
    }
    default:
      return { ok: true, notes: c.verdict === 'open' ? [`open: ${c.open ?? 'the manual leaves the outcome open'}`] : [] };
  }
}

/** The run as KTAP: one subtest per column, one test per case in it. */
export function renderKtap(results: Results, cmp: Comparison): string {
  const out: string[] = ['KTAP version 1', `1..${cmp.backends.length}`];
  const byId = new Map(results.cases.map((c) => [c.id, c] as const));
  cmp.backends.forEach((column, i) => {
    const info = results.backends.find((b) => b.name === column);
    const lines: string[] = ['  KTAP version 1', `  1..${cmp.cases.length}`];
    let failed = 0;
    cmp.cases.forEach((c, j) => {
      const l = caseLine(c, byId.get(c.id)?.results[column], column);
      for (const n of l.notes) lines.push(diag('  ', n));
      if (!l.ok) failed++;
      lines.push(`  ${l.ok ? 'ok' : 'not ok'} ${j + 1} ${ktapDescription(c.id)}${l.skip !== undefined ? ` # SKIP ${ktapDescription(l.skip)}` : ''}`);
    });
    out.push(diag('', `${column}: ${info?.version ?? 'version unknown'}${info && !info.available ? ` (unavailable: ${info.reason})` : ''}`));
    out.push(...lines);
    const skip = info && !info.available ? ` # SKIP ${ktapDescription(info.reason)}` : '';
    out.push(`${failed === 0 ? 'ok' : 'not ok'} ${i + 1} ${ktapDescription(column)}${skip}`);
  });
  return `${out.join('\n')}\n`;
}
