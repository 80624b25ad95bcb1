// The terminal matrix. By default the summary a reader acts on: each implementation's conformance
// (report/conformance.ts) first, the divergences with their field diffs, warm/cold disagreements,
// the known deviations' entries, the versions, the backends with the reasons they are
// (un)available, and the totals with the problems. With `verbose` (`--verbose`) also one line per
// case (grouped by template) × one column per backend, the informational differences and each
// known deviation's cases and evidence. Colour only on a TTY without NO_COLOR.

import type { Results } from '../core/types.ts';
import { entryStateText, entryVersionsText, tallyText, versionView } from './versions.ts';
import { conformance, countsText, type ColumnConformance } from './conformance.ts';
import { compareResults, formatDiff, referencesText, STATUSES, usedDeviations } from './compare.ts';
import { evidenceLines } from './deviations.ts';
import { warmColdLines } from './warmcold.ts';
import type { CompareOptions, Comparison } from './compare.ts';
import type { CellKind } from './format.ts';
import { caseLabel, cellFor, featureSummary, groupByTemplate, hostLine, resultDetail, SHORT_STATUS, verdictText } from './format.ts';

export interface TableOptions extends CompareOptions {
  /** Use ANSI colours (default: false; see useColor). */
  color?: boolean;
  /** Terminal width used to cap the case column (default 120). */
  width?: number;
  /** Longest list of CRASH/TIMEOUT/ERROR results printed in the totals (default 40). */
  maxProblems?: number;
  /** A comparison already computed for these results (else computed here). */
  comparison?: Comparison;
  /** Also the per-case table and the per-case differences (default: the summary only). */
  verbose?: boolean;
}

/** Colour when the stream is a TTY and NO_COLOR is unset or empty (https://no-color.org). */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

const SGR = { reset: '\x1b[0m', bold: '\x1b[1m', dim: '\x1b[2m', red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', magenta: '\x1b[35m', cyan: '\x1b[36m' } as const;
type Paint = (style: keyof typeof SGR, s: string) => string;

const CELL_STYLE: Record<CellKind, keyof typeof SGR> = {
  reference: 'green', agree: 'green', informational: 'cyan', known: 'yellow', diverge: 'red', single: 'reset',
  notrun: 'dim', problem: 'magenta', missing: 'dim',
};

const VERDICT_STYLE: Record<string, keyof typeof SGR> = {
  agree: 'green', 'agree*': 'cyan', known: 'yellow', diverge: 'red', single: 'reset', none: 'dim',
};

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(1, max - 1))}…`;
}

function pad(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

export function renderTable(results: Results, opts: TableOptions = {}): string {
  const paint: Paint = opts.color ? (style, s) => (style === 'reset' ? s : `${SGR[style]}${s}${SGR.reset}`) : (_style, s) => s;
  const cmp = opts.comparison ?? compareResults(results, opts);
  const { backends, summary } = cmp;
  const width = opts.width ?? 120;
  const out: string[] = [];

  out.push(paint('bold', `svmconf conformance matrix — ${results.cases.length} cases × ${backends.length} backends`));
  out.push(`host: ${hostLine(results.host)}    generated: ${results.generated}`);
  out.push('');

  // --- the matrix, one line per case (--verbose)
  if (opts.verbose) out.push(...caseLines(results, cmp, paint, width), '');

  // --- conformance per implementation (report/conformance.ts): each column on its own, the headline
  out.push(...conformanceLines(conformance(results, cmp, opts.deviations ?? []), paint));

  // --- divergences
  const diverging = cmp.cases.filter((c) => c.verdict === 'diverge');
  const informational = cmp.cases.filter((c) => c.verdict === 'agree' && c.diffs.length > 0);
  out.push(paint('bold', `Divergences (${diverging.length})`));
  if (diverging.length === 0) out.push('  none');
  for (const c of [...diverging, ...(opts.verbose ? informational : [])]) {
    const tag = c.verdict === 'diverge' ? paint('red', 'diverge') : paint('cyan', 'informational only');
    const differs = [...new Set(c.diffs.flatMap((d) => d.differing))];
    out.push(`  ${c.id}  ${tag}  (reference ${referencesText(c, differs)}; differs: ${differs.join(', ')})`);
    for (const d of c.diffs) out.push(`    ${d.informational ? paint('dim', formatDiff(d)) : formatDiff(d)}`);
  }
  if (!opts.verbose && informational.length > 0) out.push(paint('dim', `  (${informational.length} case${informational.length === 1 ? '' : 's'} differ only in undefined bits: --verbose lists them)`));
  out.push('');

  // --- warm/cold twins that disagree: a finding of their own (report/warmcold.ts)
  if (results.warmCold) {
    const [head, ...rest] = warmColdLines(results.warmCold);
    out.push(paint('bold', head!), ...rest, '');
  }

  // --- known deviations: apart from the divergences; each entry with its evidence and cases with --verbose
  const known = cmp.cases.filter((c) => c.verdict === 'known');
  const used = usedDeviations(cmp, opts.deviations ?? []);
  if (known.length > 0 || used.length > 0) {
    out.push(paint('bold', `Known deviations (${known.length} case${known.length === 1 ? '' : 's'}, ${used.length} registry entr${used.length === 1 ? 'y' : 'ies'})`));
    for (const { entry, cases } of used) {
      const finding = entry.finding ? ` [finding ${entry.finding}]` : '';
      if (!opts.verbose) {
        out.push(`  ${paint('yellow', entry.id)}  ${entry.backend} ${entry.versions.range}, ${cases.length} case${cases.length === 1 ? '' : 's'}${finding}`);
        continue;
      }
      out.push(`  ${paint('yellow', entry.id)}  ${entry.backend} ${entry.versions.range}: ${entry.summary}${finding}`);
      for (const line of evidenceLines(entry)) out.push(paint('dim', `    ${line}`));
      out.push(`    cases: ${cases.map((c) => c.id).join(', ')}`);
    }
    for (const c of opts.verbose ? known : []) {
      out.push(`  ${c.id}  ${paint('yellow', verdictText(c))}  (reference ${referencesText(c, c.known)}; differs: ${c.known.join(', ')})`);
      for (const d of c.diffs) out.push(`    ${paint('dim', formatDiff(d))}`);
    }
    if (!opts.verbose) out.push(paint('dim', '  (summaries, evidence and the cases with their differences: --verbose, or matrix.md)'));
    out.push('');
  }

  // --- versions: each family's columns side by side, and where an entry shows and where it is gone
  const view = versionView(results, cmp, opts.deviations ?? []);
  if (view.families.length > 0) {
    out.push(paint('bold', 'Versions (per backend family: each version against the model; registry entries by version)'));
    for (const f of view.families) {
      out.push(`  ${paint('bold', f.family)}`);
      for (const t of f.columns) out.push(`    ${pad(t.column, 18)} ${tallyText(t)}`);
      const moved = f.entries.filter((e) => e.columns.some((c) => c.state === 'gone' || c.state === 'differs' || c.state === 'unseen'));
      const still = f.entries.filter((e) => !moved.includes(e) && e.columns.some((c) => c.state === 'shows'));
      for (const e of moved) {
        out.push(`    ${paint('yellow', e.id)}: ${e.columns.filter((c) => c.state !== 'not-run').map((c) => `${c.column} ${entryStateText(c)}`).join('; ')}`);
        out.push(paint('dim', `      ${entryVersionsText(e)}`));
      }
      if (still.length) out.push(`    shown by every version run: ${still.map((e) => e.id).join(', ')}`);
    }
    out.push('');
  }

  // --- backends
  out.push(paint('bold', 'Backends'));
  const nameW = Math.max(8, ...results.backends.map((b) => b.name.length));
  for (const b of results.backends) {
    const avail = b.available ? paint('green', pad('available', 11)) : paint('yellow', pad('unavailable', 11));
    const against = b.reference !== undefined && b.reference !== b.name ? ` compared with ${b.reference};` : '';
    const version = b.version ? ` ${b.version};${against}` : against;
    const reason = b.reason ? ` ${b.reason};` : '';
    out.push(`  ${pad(b.name, nameW)}  ${avail}${version}${reason} ${featureSummary(b)}`);
  }
  out.push('');

  // --- totals
  out.push(paint('bold', `Totals (${summary.cases} cases)`));
  const cols = [...STATUSES, 'missing'] as const;
  const heads = cols.map((s) => (s === 'missing' ? '—' : SHORT_STATUS[s]));
  const colW = Math.max(7, ...heads.map((h) => h.length));
  out.push(`  ${pad('', nameW)}  ${heads.map((h) => pad(h, colW)).join(' ')}`);
  for (const b of backends) {
    const counts = summary.backends[b];
    if (!counts) continue;
    out.push(`  ${pad(b, nameW)}  ${cols.map((s) => pad(String(counts[s]), colW)).join(' ')}`);
  }
  const v = summary.verdicts;
  out.push(`  verdicts: ${paint('green', `agree ${v.agree}`)}, ${v.diverge > 0 ? paint('red', `diverge ${v.diverge}`) : `diverge ${v.diverge}`}, single ${v.single}, none ${v.none}` +
    `, ${v.known > 0 ? paint('yellow', `known deviation ${v.known}`) : 'known deviation 0'}` +
    (summary.informational > 0 ? ` (${summary.informational} agree only on defined bits)` : '') +
    `, open ${v.open} (outcome the manual leaves open: compared on no bit)`);
  out.push(`  not run by design (SKIP, UNSUPPORTED): ${summary.notRun}`);
  const problems = summary.problems;
  out.push(`  problems (CRASH, TIMEOUT, ERROR): ${problems.length > 0 ? paint('magenta', String(problems.length)) : '0'}`);
  const max = opts.maxProblems ?? 40;
  const casesById = new Map(results.cases.map((c) => [c.id, c] as const));
  for (const p of problems.slice(0, max)) {
    const r = casesById.get(p.case)?.results[p.backend];
    const detail = r ? resultDetail(r) : p.reason;
    out.push(`    ${paint('magenta', pad(p.status, 7))} ${pad(p.backend, nameW)} ${p.case}${detail ? `: ${detail}` : ''}`);
  }
  if (problems.length > max) out.push(`    … and ${problems.length - max} more (see matrix.md / results.json)`);
  return out.map((l) => l.trimEnd()).join('\n') + '\n';
}

/** One line per case, grouped by template, one cell per backend, then the verdict (--verbose). */
function caseLines(results: Results, cmp: Comparison, paint: Paint, width: number): string[] {
  const { backends } = cmp;
  const byId = new Map(cmp.cases.map((c) => [c.id, c] as const));
  const out: string[] = [];
  const cellW = Math.max(7, ...backends.map((b) => b.length));
  const verdictW = 8;
  const fixed = backends.length * (cellW + 2) + verdictW;
  const labels = results.cases.map((c) => `  ${caseLabel(c)}`);
  const longest = Math.max(4, ...labels.map((l) => l.length), ...results.cases.map((c) => c.template.length));
  const labelW = Math.max(24, Math.min(longest, width - fixed - 2));
  out.push(paint('bold', `${pad('case', labelW)}  ${backends.map((b) => pad(b, cellW)).join('  ')}  verdict`));
  for (const group of groupByTemplate(results.cases)) {
    out.push(paint('bold', truncate(group.template, labelW + 2 + fixed)));
    for (const c of group.cases) {
      const comparison = byId.get(c.id);
      if (!comparison) continue;
      const cells = backends.map((b) => {
        const cell = cellFor(comparison, c.results[b], b);
        return paint(CELL_STYLE[cell.kind], pad(cell.text, cellW));
      });
      const v = verdictText(comparison);
      const style = VERDICT_STYLE[comparison.verdict === 'known' ? 'known' : v] ?? 'reset';
      out.push(`${pad(truncate(`  ${caseLabel(c)}`, labelW), labelW)}  ${cells.join('  ')}  ${paint(style, v)}`);
    }
  }
  out.push(paint('dim', 'cells: <digest> reference record · = same as reference · ≠<digest> differs · ~<digest> differs only in known deviations · ≈ differs only in undefined bits · — no result'));
  return out;
}

/**
 * Each column on its own: its counts, why cases did not run (the commonest reason), its registry
 * entries and findings, and where it diverges or fails, per template and parameter value.
 */
function conformanceLines(per: readonly ColumnConformance[], paint: Paint): string[] {
  if (per.length === 0) return [];
  const out = [paint('bold', 'Conformance per implementation (each column against its reference model)')];
  const w = Math.max(8, ...per.map((p) => p.column.length));
  const more = (s: string): string => `  ${pad('', w)}  ${s}`;
  for (const p of per) {
    out.push(`  ${pad(p.column, w)}  ${countsText(p.total)}${p.total.diverge ? paint('red', '  ← diverges') : ''}`);
    const top = p.notRunReasons[0];
    if (top) out.push(paint('dim', more(`not run: ${top.cases}× ${truncate(top.reason, 100)}${p.notRunReasons.length > 1 ? ` (+${p.notRunReasons.length - 1} other reasons)` : ''}`)));
    if (p.deviations.length) out.push(more(`known: ${p.deviations.length} registry entr${p.deviations.length === 1 ? 'y' : 'ies'}${p.findings.length ? `; findings: ${p.findings.join(', ')}` : ''}`));
    for (const [what, key, style] of [['diverges', 'diverge', 'red'], ['problems', 'problem', 'magenta']] as const) {
      for (const t of p.templates.filter((x) => x[key] > 0)) {
        // per parameter, its values that have some: `(vec 0x20:2 0x21:2; prefix none:6 ds:6)`
        const byAxis = new Map<string, string[]>();
        for (const a of p.axes) if (a.template === t.template && a[key] > 0) byAxis.set(a.axis, [...(byAxis.get(a.axis) ?? []), `${a.value}:${a[key]}`]);
        const values = [...byAxis].map(([axis, vs]) => `${axis} ${vs.join(' ')}`);
        out.push(paint(style, more(`${what}: ${t.template} ${t[key]}${values.length ? ` (${values.join('; ')})` : ''}`)));
      }
    }
  }
  out.push('');
  return out;
}

/** Render to a stream, with colour when the stream is a TTY and NO_COLOR is not set. */
export function printTable(results: Results, stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number } = process.stdout, opts: TableOptions = {}): void {
  stream.write(renderTable(results, { color: useColor(stream), width: stream.columns, ...opts }));
}
