// out/matrix.md: the conformance matrix as Markdown (title, host, backends, one section per
// template with a case × backend table, divergences with decoded field diffs, problems, legend).

import { axisKey, axisVerdicts } from './axes.ts';
import type { Results } from '../core/types.ts';
import { compareResults, formatDiff, isProblem, referencesText, STATUSES, usedDeviations, VERDICTS } from './compare.ts';
import type { Deviation } from './deviations.ts';
import type { CompareOptions, Comparison } from './compare.ts';
import {
  caseLabel, cellFor, featureState, groupByTemplate, hostLine, resultDetail, STATUS_MEANING, VERDICT_MEANING, verdictText,
} from './format.ts';
import { FEATURES } from '../core/types.ts';
import { writeFileAtomic } from './results.ts';
import { entryStateText, entryVersionsText, versionView } from './versions.ts';
import { conformance, countsText, type ColumnConformance, type ConformanceCounts } from './conformance.ts';
import { findingLink } from './findings.ts';

export interface MarkdownOptions extends CompareOptions {
  title?: string;
  comparison?: Comparison;
  /** Longest reason shown inside a matrix cell (full reasons are listed under Problems). */
  maxCellReason?: number;
}

/** Make text safe inside a Markdown table cell. */
export function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').replace(/</g, '&lt;');
}

const code = (s: string): string => (s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``);

export function renderMarkdown(results: Results, opts: MarkdownOptions = {}): string {
  const cmp = opts.comparison ?? compareResults(results, opts);
  const { backends, summary } = cmp;
  const byId = new Map(cmp.cases.map((c) => [c.id, c] as const));
  const maxReason = opts.maxCellReason ?? 40;
  const L: string[] = [];
  const row = (cells: string[]): void => void L.push(`| ${cells.join(' | ')} |`);

  L.push(`# ${opts.title ?? 'svmconf conformance matrix'}`, '');
  L.push(`- **Host:** ${mdCell(hostLine(results.host))}`);
  L.push(`- **Date:** ${results.generated}`);
  L.push(`- **Cases:** ${summary.cases}; verdicts: agree ${summary.verdicts.agree}, known deviation ${summary.verdicts.known}, open ${summary.verdicts.open}, ` +
    `diverge ${summary.verdicts.diverge}, single ${summary.verdicts.single}, none ${summary.verdicts.none}; ` +
    `problems (CRASH/TIMEOUT/ERROR): ${summary.problems.length}`);
  L.push('');

  // --- backends
  L.push('## Backends', '');
  row(['backend', 'available', 'version', 'reason', ...FEATURES]);
  row(['---', '---', '---', '---', ...FEATURES.map(() => '---')]);
  for (const b of results.backends) {
    const against = b.reference !== undefined && b.reference !== b.name ? ` (compared with ${b.reference})` : '';
    row([code(b.name), b.available ? 'yes' : 'no', mdCell(`${b.version ?? ''}${against}`), mdCell(b.reason),
      ...FEATURES.map((f) => mdCell(featureState(b, f)))]);
  }
  L.push('');

  // --- conformance per implementation (report/conformance.ts): each column on its own, per template and value
  const per = conformance(results, cmp, opts.deviations ?? []);
  if (per.length > 0) L.push('## Conformance per implementation', '', ...conformanceMarkdown(per, entryAnchor));

  // --- versions (report/versions.ts): a peer's developer reads this first
  const view = versionView(results, cmp, opts.deviations ?? []);
  if (view.families.length > 0) {
    L.push('## Versions', '');
    L.push('Each backend family\'s columns side by side: the cases of each version against the model, and every registry entry of the family on each version of this run (report/versions.ts says what each state means).', '');
    for (const f of view.families) {
      L.push(`### ${code(f.family)}`, '');
      row(['column', 'version', 'agree', 'known', 'open', 'diverge', 'not run', 'problems', 'packages']);
      row(['---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---']);
      for (const t of f.columns) {
        row([code(t.column), mdCell(t.version), String(t.agree), String(t.known), String(t.open), t.diverge ? `**${t.diverge}**` : '0', String(t.notRun), String(t.problems),
          mdCell(Object.entries(t.packages ?? {}).map(([p, v]) => `${p} ${v}`).join(', '))]);
      }
      L.push('');
      if (f.entries.length) {
        row(['entry', ...f.columns.map((c) => code(c.column)), 'registry']);
        row(['---', ...f.columns.map(() => '---'), '---']);
        for (const e of f.entries) row([code(e.id), ...e.columns.map((c) => mdCell(entryStateText(c))), mdCell(entryVersionsText(e))]);
        L.push('');
      }
    }
  }

  // --- per template
  L.push('## Results', '');
  L.push('Templates where every case agrees, is a known deviation, is open or did not run are folded; the reasons a case did not run are given once per column under "Conformance per implementation" (UNSUPPORTED cells name no reason).', '');
  for (const group of groupByTemplate(results.cases)) {
    L.push(`### ${code(group.template)}`, '');
    const compared = group.cases.map((c) => byId.get(c.id)).filter((c): c is NonNullable<typeof c> => c !== undefined);
    // folded unless a case diverges, has nothing to compare, or ended in CRASH, TIMEOUT or ERROR somewhere
    const fold = !group.cases.some((c) => ['diverge', 'none'].includes(byId.get(c.id)?.verdict ?? '') || Object.values(c.results).some((r) => isProblem(r.status)));
    if (fold) {
      const n = (v: string) => compared.filter((c) => c.verdict === v).length;
      L.push(`<details><summary>${compared.length} cases: ${n('agree')} agree, ${n('known')} known deviation, ${n('open')} open, ${n('single')} single</summary>`, '');
    }
    row(['case', ...backends.map(code), 'verdict']);
    row(['---', ...backends.map(() => '---'), '---']);
    for (const c of group.cases) {
      const comparison = byId.get(c.id);
      if (!comparison) continue;
      const cells = backends.map((b) => {
        const r = c.results[b];
        const cell = cellFor(comparison, r, b);
        if (!r) return '—';
        if (r.status === 'OK') {
          const suffix = cell.kind === 'reference' ? ' (ref)' : '';
          return `OK ${cell.text}${suffix}`;
        }
        // UNSUPPORTED says the same for every case of a column: its reason is listed once per column
        const why = r.reason && r.status !== 'UNSUPPORTED' ? `: ${r.reason.length > maxReason ? `${r.reason.slice(0, maxReason - 1)}…` : r.reason}` : '';
        return mdCell(`${r.status}${why}`);
      });
      const verdict = verdictText(comparison);
      const shown = comparison.verdict === 'diverge' ? `**${verdict}**`
        : comparison.verdict === 'known' ? `*${mdCell(verdict)}*` : verdict;
      row([code(caseLabel(c)), ...cells, shown]);
    }
    L.push('');
    if (fold) L.push('</details>', '');
  }

  // --- per template and axis: verdicts per parameter value (templates with a matrix only)
  const axes = axisVerdicts(cmp.cases);
  if (axes.length > 0) {
    L.push('## Per template and axis', '');
    row(['template', 'axis', 'value', ...VERDICTS]);
    row(['---', '---', '---', ...VERDICTS.map(() => '---:')]);
    for (const a of axes) row([code(a.template), code(a.axis), code(a.value), ...VERDICTS.map((v) => String(a.verdicts[v]))]);
    L.push('');
  }

  // --- divergences
  const diverging = cmp.cases.filter((c) => c.verdict === 'diverge');
  const informational = cmp.cases.filter((c) => c.verdict === 'agree' && c.diffs.length > 0);
  L.push(`## Divergences (${diverging.length})`, '');
  if (diverging.length === 0) L.push('None.', '');
  for (const c of [...diverging, ...informational]) {
    const kind = c.verdict === 'diverge' ? '' : ' (informational only)';
    L.push(`### ${code(c.id)}${kind}`, '');
    const differing = [...new Set(c.diffs.flatMap((d) => d.differing))];
    L.push(`Reference: ${referencesText(c, differing).split(', ').map(code).join(', ')}; differing: ${differing.map(code).join(', ')}`, '');
    for (const d of c.diffs) L.push(`- ${mdCell(formatDiff(d))}`);
    L.push('');
  }

  // --- warm/cold twins that disagree: a finding of their own (report/warmcold.ts)
  if (results.warmCold) {
    const wc = results.warmCold;
    L.push(`## Warm/cold disagreements (${wc.disagreements.length})`, '');
    L.push(`${wc.pairs} temp=cold/temp=warm pair(s), ${wc.compared} comparison(s) (pair × backend).`, '');
    if (wc.disagreements.length === 0) L.push('None.', '');
    for (const d of wc.disagreements) L.push(`- ${code(d.cold)} vs ${code(d.warm)} on ${code(d.backend)}: ${mdCell(d.why)}`);
    if (wc.disagreements.length) L.push('');
  }

  // --- known deviations, apart from the divergences: each entry used with its evidence, then the cases
  const known = cmp.cases.filter((c) => c.verdict === 'known');
  const used = usedDeviations(cmp, opts.deviations ?? []);
  L.push(`## Known deviations (${known.length})`, '');
  if (known.length === 0 && used.length === 0) L.push('None.', '');
  if (used.length > 0) {
    L.push('Divergences the deviation registry explains (backend, version, case, field and value all match an entry). ' +
      'They do not count as divergences; anything an entry does not describe still does.', '');
  }
  for (const { entry, cases } of used) L.push(...deviationSection(entry, cases.map((c) => c.id)));
  for (const c of known) {
    L.push(`### ${code(c.id)} (${mdCell(verdictText(c))})`, '');
    L.push(`Reference: ${referencesText(c, c.known).split(', ').map(code).join(', ')}; differing: ${c.known.map(code).join(', ')}`, '');
    for (const d of c.diffs) L.push(`- ${mdCell(formatDiff(d))}`);
    L.push('');
  }

  // --- problems
  L.push(`## Problems (${summary.problems.length})`, '');
  if (summary.problems.length === 0) L.push('None.', '');
  else {
    row(['case', 'backend', 'status', 'detail']);
    row(['---', '---', '---', '---']);
    const casesById = new Map(results.cases.map((c) => [c.id, c] as const));
    for (const p of summary.problems) {
      const r = casesById.get(p.case)?.results[p.backend];
      row([code(p.case), code(p.backend), p.status, mdCell(r ? resultDetail(r) : p.reason)]);
    }
    L.push('');
  }

  // --- totals
  L.push('## Totals', '');
  row(['backend', ...STATUSES, 'no result']);
  row(['---', ...STATUSES.map(() => '---:'), '---:']);
  for (const b of backends) {
    const n = summary.backends[b];
    if (n) row([code(b), ...STATUSES.map((s) => String(n[s])), String(n.missing)]);
  }
  L.push('');

  // --- legend
  L.push('## Legend', '');
  L.push('Statuses (one per case and backend):', '');
  for (const s of STATUSES) L.push(`- **${s}**: ${STATUS_MEANING[s]}`);
  L.push('- **—**: the backend has no result for the case');
  L.push('');
  L.push('Cells of OK results: `OK <digest> (ref)` is the reference record (first OK backend in the preference order; ' +
    'the digest is the first 6 hex digits of the CRC-32 of the record\'s hex text), `OK =` identical to the reference, ' +
    '`OK ≠<digest>` different from it, `OK ~<digest>` different only where a registry entry explains it (known deviation), ' +
    '`OK ≈` different only in bits the architecture leaves undefined. A backend the Backends table shows "compared with" ' +
    'another is compared with that one instead (each Bochs flavour with the model under the profile of its CPU family).', '');
  L.push('Verdicts (per case, over the backends whose status is OK):', '');
  for (const v of VERDICTS) L.push(`- **${v}**: ${VERDICT_MEANING[v]}`);
  L.push('- **agree\\***: agree, with differences only in undefined bits (listed as informational)');
  return L.join('\n') + '\n';
}

/** Where matrix.md of a run describes a registry entry (its section under "Known deviations"). */
const entryAnchor = (id: string): string => `entry-${id}`;

const conformanceCell = (c: ConformanceCounts | undefined): string => (!c ? '' : [c.agree && `${c.agree} =`, c.known && `${c.known} ~`, c.open && `${c.open} ?`,
  c.diverge && `**${c.diverge} ≠**`, c.notRun && `${c.notRun} –`, c.problem && `${c.problem} problems`].filter(Boolean).join(' · '));

/**
 * Conformance per implementation as Markdown, for a run's matrix.md and each family of publish's:
 * a template × column table, the per-value rows folded below it, then a line per column with its
 * counts, its known deviations (linked to `anchor(id)` on the same page), its findings
 * (docs/findings.md) and why cases did not run, each reason once.
 */
export function conformanceMarkdown(per: readonly ColumnConformance[], anchor: (entry: string) => string): string[] {
  const L: string[] = [];
  const row = (cells: string[]): void => void L.push(`| ${cells.join(' | ')} |`);
  L.push('Each column counted on its own against its reference model: `=` agree, `~` known deviation, `?` open (the manual leaves the outcome open), `≠` diverge, `–` not run (why, once per column, below the table).', '');
  row(['template', ...per.map((p) => code(p.column))]);
  row(['---', ...per.map(() => '---')]);
  for (const t of [...new Set(per.flatMap((p) => p.templates.map((x) => x.template)))]) {
    row([code(t), ...per.map((p) => conformanceCell(p.templates.find((x) => x.template === t)))]);
  }
  row(['**all**', ...per.map((p) => conformanceCell(p.total))]);
  L.push('');
  const axes = per.map((p) => new Map(p.axes.map((a) => [axisKey(a), a] as const)));
  const keys = [...new Map(per.flatMap((p) => p.axes.map((a) => [axisKey(a), a] as const)))];
  if (keys.length > 0) {
    L.push(`<details><summary>Per parameter value (${keys.length} rows)</summary>`, '');
    row(['template', 'axis', 'value', ...per.map((p) => code(p.column))]);
    row(['---', '---', '---', ...per.map(() => '---')]);
    for (const [k, a] of keys) row([code(a.template), code(a.axis), code(a.value), ...axes.map((m) => conformanceCell(m.get(k)))]);
    L.push('', '</details>', '');
  }
  for (const p of per) {
    const known = p.deviations.length ? `; known deviations: ${p.deviations.map((id) => `[${code(id)}](#${anchor(id)})`).join(', ')}` : '';
    const findings = p.findings.length ? `; findings: ${p.findings.map((id) => `[${code(id)}](${findingLink(id)})`).join(', ')}` : '';
    L.push(`- ${code(p.column)} (${mdCell(p.version)}${p.peer ? `, peer ${code(p.peer)}` : ''}): ${mdCell(countsText(p.total))}${known}${findings}`);
    for (const r of p.notRunReasons) L.push(`  - not run ×${r.cases}: ${mdCell(r.reason)}`);
  }
  L.push('');
  return L;
}

/** Render and write matrix.md atomically. */
export async function writeMarkdown(path: string, results: Results, opts: MarkdownOptions = {}): Promise<void> {
  await writeFileAtomic(path, renderMarkdown(results, opts));
}

/** One registry entry as Markdown: what, where, the manual, the peer sources, the threads, the cases. */
function deviationSection(d: Deviation, cases: string[]): string[] {
  const L: string[] = [`<a id="${entryAnchor(d.id)}"></a>`, '', `### Entry ${code(d.id)}: ${mdCell(d.backend)} ${mdCell(d.versions.range)}`, ''];
  L.push(mdCell(d.summary), '');
  L.push(`- **Manual:** ${mdCell(d.expected)} (${mdCell(d.evidence.manual)})`);
  const observed = Object.entries(d.observed).map(([f, o]) => `${code(f)} = ${code(o.text)}`);
  L.push(`- **Fields:** ${d.fields.map(code).join(', ')}${observed.length ? `; observed ${observed.join(', ')}` : ''}`);
  for (const p of d.evidence.peer) {
    L.push(`- **Source:** ${code(`${p.repo} ${p.path}:${p.line}`)}${p.commit ? ` at ${code(p.commit)}` : ''}` +
      `${p.function ? ` in ${code(p.function)}` : ''}: ${mdCell(p.note)}`);
  }
  for (const t of d.evidence.threads) L.push(`- **Thread:** <${t}>`);
  L.push(`- **Cases:** ${cases.map(code).join(', ')}`);
  L.push(`- **Registry:** ${code(`${d.file}:${d.line}`)}`);
  if (d.finding) L.push(`- **Finding:** [${code(d.finding)}](${findingLink(d.finding)})`);
  L.push('');
  return L;
}
