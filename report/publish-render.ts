// The merged matrix (report/publish.ts) as files: matrix.md, matrix.html (one self-contained
// page: inline CSS and script, no network), matrix.json and junit.xml for CI systems.
//
// Failures and known deviations are kept apart everywhere: in the HTML a diverging cell and a
// known-deviation cell have different classes and colours, and each family section has a
// "Failures" list and a separate "Known deviations" list (with the registry entries' evidence);
// in JUnit a known deviation is a passing testcase carrying a `known-deviation` property.

import { entryStateText, entryVersionsText } from './versions.ts';
import { findingLink } from './findings.ts';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Deviation } from './deviations.ts';
import { conformanceMarkdown, mdCell } from './markdown.ts';
import type { FamilySection, Matrix, MatrixCase, MatrixCell, MatrixColumn } from './publish.ts';
import { VERDICT_RANK } from './publish.ts';
import { writeFileAtomic } from './results.ts';
import { stableJson } from './golden.ts';
import { VERDICT_MEANING } from './format.ts';

/** The files publish writes, by role. */
export const PUBLISH_FILES = { markdown: 'matrix.md', html: 'matrix.html', json: 'matrix.json', junit: 'junit.xml' } as const;

const code = (s: string): string => (s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``);
const hex2 = (n: number): string => n.toString(16).toUpperCase().padStart(2, '0');

function columnTitle(c: MatrixColumn): string {
  const cpu = c.cpu ? `${c.cpu.familyName}, ${c.cpu.source}` : 'CPU not known';
  return `${c.key}${c.version ? ` — ${c.version}` : ''} — ${cpu}`;
}

function cellText(cell: MatrixCell | undefined): string {
  if (!cell) return '—';
  const base = cell.status === 'OK' ? `OK ${cell.text}` : cell.status;
  return `${base}${cell.unstable ? ' (unstable)' : ''}`;
}

function failuresOf(f: FamilySection): MatrixCase[] {
  return f.cases.filter((c) => c.verdict === 'diverge');
}
function problemsOf(f: FamilySection): Array<{ c: MatrixCase; column: string; cell: MatrixCell }> {
  return f.cases.flatMap((c) => Object.entries(c.cells).filter(([, cell]) => cell.kind === 'problem').map(([column, cell]) => ({ c, column, cell })));
}
function knownOf(f: FamilySection): MatrixCase[] {
  return f.cases.filter((c) => c.verdict === 'known');
}

function diffLines(c: MatrixCase): string[] {
  const out: string[] = [];
  for (const cmp of c.comparisons) {
    for (const d of cmp.diffs) {
      const tag = d.informational ? ' (informational: undefined bits only)' : d.known.length && !d.diverging.length ? ` (known deviation ${[...new Set(d.known.map((k) => k.id))].join(', ')})` : '';
      out.push(`${cmp.origin}: ${d.field}${tag}: ${d.values.map((v) => `${v.column} ${v.text}`).join('; ')}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Markdown

export function renderPublishMarkdown(m: Matrix, registry: readonly Deviation[] = []): string {
  const L: string[] = ['# svmconf conformance matrix per CPU family', ''];
  L.push(`Generated ${m.generated} from ${m.inputs.length} results file(s). Merge rule: ${m.mergeRule}`, '');
  L.push(...versionsMarkdown(m));
  for (const f of m.families) {
    L.push(`## ${mdCell(f.name)} (family ${hex2(f.family)}h${f.profile ? `, model profile ${code(f.profile)}` : ''})`, '');
    for (const c of f.cpus) L.push(`- ${mdCell(c)}`);
    L.push(`- Cases: ${f.summary.cases}; diverge ${f.summary.verdicts.diverge}, known deviation ${f.summary.verdicts.known}, open ${f.summary.verdicts.open}, agree ${f.summary.verdicts.agree}, single ${f.summary.verdicts.single}, none ${f.summary.verdicts.none}; problems ${f.summary.problems}; unstable ${f.summary.unstable}`, '');
    // the headline of the section, its first table: each implementation on its own (report/conformance.ts)
    if (f.conformance.length > 0) L.push('### Conformance per implementation', '', ...conformanceMarkdown(f.conformance, (id) => deviationAnchor(f, id)));
    L.push('### Runs, columns and cases', '');
    L.push('| run | machine | date | backends |', '|---|---|---|---|');
    for (const r of f.runs) L.push(`| ${code(r.source)} | ${mdCell(r.machine)} | ${r.generated} | ${r.backends.map((b) => `${b.name}${b.cpu ? ` (${b.cpu.familyName})` : ''}`).join(', ')} |`);
    L.push('');
    L.push('| column | kind | CPU |', '|---|---|---|');
    for (const c of f.columns) L.push(`| ${code(c.key)} | ${c.kind} | ${mdCell(c.cpu ? `${c.cpu.familyName} (family ${hex2(c.cpu.family)}h model ${hex2(c.cpu.model)}h stepping ${c.cpu.stepping}), ${c.cpu.source}` : 'not known')} |`);
    L.push('');
    if (f.recorded.length === 0) L.push(`Recorded hardware: none under \`expected/hw/${f.slug}/\` yet (see docs/publishing.md "record: hardware truth").`, '');
    L.push(`| case | ${f.columns.map((c) => code(c.key)).join(' | ')} | verdict |`);
    L.push(`|---|${f.columns.map(() => '---').join('|')}|---|`);
    for (const c of f.cases) {
      const v = c.verdict === 'diverge' ? `**${c.verdictText}**` : c.verdict === 'known' ? `*${mdCell(c.verdictText)}*` : mdCell(c.verdictText);
      L.push(`| ${code(c.id)} | ${f.columns.map((col) => mdCell(cellText(c.cells[col.key]))).join(' | ')} | ${v} |`);
    }
    L.push('');
    const failures = failuresOf(f);
    L.push(`### Failures (${failures.length})`, '');
    if (failures.length === 0) L.push('None.', '');
    for (const c of failures) {
      L.push(`#### ${code(c.id)}`, '');
      for (const l of diffLines(c)) L.push(`- ${mdCell(l)}`);
      L.push('');
    }
    const problems = problemsOf(f);
    L.push(`### Problems (${problems.length})`, '');
    if (problems.length === 0) L.push('None.', '');
    for (const p of problems) L.push(`- ${code(p.c.id)} on ${code(p.column)}: ${p.cell.status}${p.cell.reason ? `: ${mdCell(p.cell.reason)}` : ''}`);
    if (problems.length) L.push('');
    const known = knownOf(f);
    L.push(`### Known deviations (${known.length})`, '');
    if (known.length === 0) L.push('None.', '');
    for (const d of f.deviations) {
      const e = registry.find((x) => x.id === d.id);
      L.push(`- <a id="${deviationAnchor(f, d.id)}"></a>**${code(d.id)}**${e ? `: ${mdCell(e.summary)} (${mdCell(e.evidence.manual)}; ${code(`${e.file}:${e.line}`)}${e.finding ? `; finding [${code(e.finding)}](${findingLink(e.finding)})` : ''})` : ''} — ${d.cases.map(code).join(', ')}`);
    }
    L.push('');
  }
  L.push('## Legend', '');
  for (const v of VERDICT_RANK) L.push(`- **${v}**: ${VERDICT_MEANING[v]}`);
  L.push('- Cells: `OK <digest>` reference, `OK =` equal to its run\'s reference, `OK ~<digest>` a known deviation, `OK ≠<digest>` a divergence, `OK ≈` differs only in undefined bits; `(unstable)`: an older run of the same column gave another result.');
  return `${L.join('\n')}\n`;
}

/** Where a family's Known deviations list names an entry (ids are unique per family, not per page). */
const deviationAnchor = (f: Pick<FamilySection, 'slug'>, id: string): string => `${f.slug}-${id}`;

/** The version view of every run that has one (report/versions.ts): first in the page, for each peer's developers. */
function versionsMarkdown(m: Matrix): string[] {
  if (m.versions.length === 0) return [];
  const L: string[] = ['## Versions', ''];
  for (const { source, machine, view } of m.versions) {
    for (const f of view.families) {
      L.push(`### ${code(f.family)} — ${code(source)} (${mdCell(machine)})`, '');
      L.push('| column | version | agree | known | open | diverge | not run | problems |', '|---|---|---:|---:|---:|---:|---:|---:|');
      for (const t of f.columns) L.push(`| ${code(t.column)} | ${mdCell(t.version)} | ${t.agree} | ${t.known} | ${t.open} | ${t.diverge ? `**${t.diverge}**` : 0} | ${t.notRun} | ${t.problems} |`);
      L.push('');
      if (f.entries.length === 0) continue;
      L.push(`| entry | ${f.columns.map((c) => code(c.column)).join(' | ')} | registry |`, `|---|${f.columns.map(() => '---').join('|')}|---|`);
      for (const e of f.entries) L.push(`| ${code(e.id)} | ${e.columns.map((c) => mdCell(entryStateText(c))).join(' | ')} | ${mdCell(entryVersionsText(e))} |`);
      L.push('');
    }
  }
  return L;
}

/** The same in the HTML page, before the families. */
function versionsHtml(m: Matrix): string {
  if (m.versions.length === 0) return '';
  const H: string[] = ['<section id="versions"><h2>Versions</h2>'];
  for (const { source, machine, view } of m.versions) {
    for (const f of view.families) {
      H.push(`<h3>${esc(f.family)} — ${esc(source)} (${esc(machine)})</h3>`);
      H.push('<table class="versions"><thead><tr><th>column</th><th>version</th><th>agree</th><th>known</th><th>open</th><th>diverge</th><th>not run</th><th>problems</th></tr></thead><tbody>');
      for (const t of f.columns) H.push(`<tr><td>${esc(t.column)}</td><td>${esc(t.version)}</td><td>${t.agree}</td><td>${t.known}</td><td>${t.open}</td><td${t.diverge ? ' class="k-diverge"' : ''}>${t.diverge}</td><td>${t.notRun}</td><td>${t.problems}</td></tr>`);
      H.push('</tbody></table>');
      if (f.entries.length === 0) continue;
      H.push(`<table class="versions"><thead><tr><th>entry</th>${f.columns.map((c) => `<th title="${esc(c.version)}">${esc(c.column)}</th>`).join('')}<th>registry</th></tr></thead><tbody>`);
      for (const e of f.entries) {
        H.push(`<tr><td title="${esc(e.summary)}">${esc(e.id)}</td>${e.columns.map((c) => `<td class="v-${c.state}">${esc(entryStateText(c))}</td>`).join('')}<td>${esc(entryVersionsText(e))}</td></tr>`);
      }
      H.push('</tbody></table>');
    }
  }
  H.push('</section>');
  return H.join('\n');
}

/**
 * The model against recorded hardware of one family, for `svmconf run`'s matrix.md and terminal:
 * a line per recording with its counts, then every case where a recording is not equal to the model.
 */
export function renderRecordedSection(f: FamilySection): string[] {
  const recorded = f.columns.filter((c) => c.kind === 'recorded');
  if (recorded.length === 0) return [];
  const model = f.columns.find((c) => c.kind === 'model');
  const L: string[] = [`## Recorded hardware: ${mdCell(f.name)} (expected/hw/${f.slug}/)`, ''];
  for (const col of recorded) {
    const counts = new Map<string, number>();
    for (const c of f.cases) {
      const k = c.cells[col.key]?.kind ?? 'missing';
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    L.push(`- ${code(col.key)}: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`);
  }
  L.push('');
  const differing = f.cases.filter((c) => recorded.some((col) => ['diverge', 'known', 'informational', 'problem'].includes(c.cells[col.key]?.kind ?? '')));
  if (differing.length === 0) {
    L.push(`Every recorded case equals ${model ? code(model.key) : 'the model'} where both have a record.`, '');
    return L;
  }
  L.push(`| case | ${model ? code(model.key) : 'model'} | ${recorded.map((c) => code(c.key)).join(' | ')} |`, `|---|---|${recorded.map(() => '---').join('|')}|`);
  for (const c of differing) L.push(`| ${code(c.id)} | ${mdCell(cellText(model ? c.cells[model.key] : undefined))} | ${recorded.map((col) => mdCell(cellText(c.cells[col.key]))).join(' | ')} |`);
  L.push('');
  for (const c of differing) {
    for (const cmp of c.comparisons.filter((x) => x.origin.startsWith('recorded '))) {
      for (const d of cmp.diffs) L.push(`- ${code(c.id)} ${mdCell(d.field)}: ${mdCell(d.values.map((v) => `${v.column} ${v.text}`).join('; '))}`);
    }
  }
  L.push('');
  return L;
}

// ---------------------------------------------------------------------------------------------
// HTML

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1a1a1a}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:2px solid #444}
table{border-collapse:collapse;margin:.5em 0}
table.versions td.v-shows{background:#fff3cd}table.versions td.v-gone{background:#d4edda}table.versions td.v-differs,table.versions td.v-unseen{background:#f8d7da}
th,td{border:1px solid #bbb;padding:2px 6px;vertical-align:top;text-align:left}
table.matrix th{background:#eee;cursor:pointer;user-select:none;position:sticky;top:0}
table.matrix th[aria-sort=ascending]::after{content:" \\25B2"}
table.matrix th[aria-sort=descending]::after{content:" \\25BC"}
td.cell{font-family:ui-monospace,monospace;white-space:nowrap}
.k-reference,.k-agree{background:#e6f4e6}.k-informational{background:#e6f2f7}
.k-known{background:#fff3c4}.k-diverge{background:#f9c9c9;font-weight:bold}
.k-problem{background:#ecd3f2}.k-notrun,.k-missing{color:#777}
.v-diverge{color:#a00;font-weight:bold}.v-known{color:#7a5b00}
.unstable{outline:2px dashed #c60}
tr.detail td{background:#fafafa}
ul.diffs{margin:.2em 0 .2em 1.2em;padding:0;font-family:ui-monospace,monospace;font-size:12px}
.field{font-weight:bold}
section.failures{border-left:6px solid #c00;padding-left:.8em}
section.deviations{border-left:6px solid #d9a400;padding-left:.8em}
section.problems{border-left:6px solid #8a3fa0;padding-left:.8em}
#filter{width:40em;font-size:1em;padding:3px}
button.toggle{font-size:11px;padding:0 4px}
.muted{color:#666}
`;

// The page's behaviour: sort a table by a header click, filter rows by words, open a case's diff.
// Each case is one <tbody> (its row and its detail row), so sorting moves both together.
const SCRIPT = `
(function(){
  function key(tb, col){
    var v = col === 'verdict' ? tb.getAttribute('data-verdict-rank')
      : col === 'id' ? tb.getAttribute('data-id')
      : col === 'template' ? tb.getAttribute('data-template')
      : (tb.querySelector('tr.row').children[Number(col.slice(4)) + 2] || {}).textContent || '';
    return v;
  }
  document.querySelectorAll('table.matrix').forEach(function(table){
    table.querySelectorAll('th[data-sort]').forEach(function(th){
      th.addEventListener('click', function(){
        var col = th.getAttribute('data-sort');
        var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
        table.querySelectorAll('th[data-sort]').forEach(function(o){ o.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', dir);
        var bodies = Array.prototype.slice.call(table.querySelectorAll('tbody.case'));
        bodies.sort(function(a, b){
          var x = key(a, col), y = key(b, col);
          var c = x < y ? -1 : x > y ? 1 : 0;
          return dir === 'ascending' ? c : -c;
        });
        bodies.forEach(function(b){ table.appendChild(b); });
      });
    });
  });
  var filter = document.getElementById('filter');
  function apply(){
    var words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    document.querySelectorAll('tbody.case').forEach(function(tb){
      var hay = (tb.getAttribute('data-id') + ' ' + tb.getAttribute('data-template') + ' ' + tb.getAttribute('data-verdict')).toLowerCase();
      tb.hidden = !words.every(function(w){ return hay.indexOf(w) >= 0; });
    });
    document.querySelectorAll('section.family').forEach(function(s){
      var shown = s.querySelectorAll('tbody.case:not([hidden])').length;
      var n = s.querySelector('.shown-count'); if (n) n.textContent = String(shown);
    });
  }
  filter.addEventListener('input', apply);
  document.querySelectorAll('button.toggle').forEach(function(b){
    b.addEventListener('click', function(){
      var d = b.closest('tbody').querySelector('tr.detail');
      d.hidden = !d.hidden;
      b.setAttribute('aria-expanded', String(!d.hidden));
      b.textContent = d.hidden ? '+' : '\\u2212';
    });
  });
})();
`;

function htmlCell(col: MatrixColumn, cell: MatrixCell | undefined): string {
  if (!cell) return `<td class="cell k-missing" data-col="${esc(col.key)}">—</td>`;
  const title = [cell.status, cell.reason, cell.deviations ? `known deviation: ${cell.deviations.join(', ')}` : '', `from ${cell.source}`,
    ...(cell.unstable ?? []).map((u) => `older run ${u.source}: ${u.status}${u.digest ? ` ${u.digest}` : ''}`)].filter(Boolean).join(' — ');
  const cls = `cell k-${cell.kind}${cell.unstable ? ' unstable' : ''}`;
  return `<td class="${cls}" data-col="${esc(col.key)}" title="${esc(title)}">${esc(cellText(cell))}</td>`;
}

function htmlDiffs(c: MatrixCase): string {
  if (c.comparisons.length === 0) return '<span class="muted">no differences: every OK record equals its reference on every bit</span>';
  return c.comparisons.map((cmp) => {
    const items = cmp.diffs.map((d) => {
      const tag = d.informational ? ' <span class="muted">(informational: undefined bits only)</span>'
        : d.diverging.length ? ' <span class="v-diverge">(divergence)</span>'
          : ` <span class="v-known">(known deviation ${esc([...new Set(d.known.map((k) => k.id))].join(', '))})</span>`;
      const vals = d.values.map((v) => `${esc(v.column)}: <span class="value">${esc(v.text)}</span>`).join('<br>');
      return `<li class="diff" data-field="${esc(d.field)}"><span class="field">${esc(d.field)}</span>${tag}<br>${vals}</li>`;
    }).join('');
    return `<div class="comparison"><span class="muted">${esc(cmp.origin)}, reference ${esc(cmp.reference)}, verdict ${esc(cmp.verdict)}</span><ul class="diffs">${items}</ul></div>`;
  }).join('');
}

function htmlSection(f: FamilySection, registry: readonly Deviation[]): string {
  const H: string[] = [];
  H.push(`<section class="family" id="family-${esc(f.slug)}" data-family="${esc(f.slug)}">`);
  H.push(`<h2>${esc(f.name)} <span class="muted">(family ${hex2(f.family)}h${f.profile ? `, model profile ${esc(f.profile)}` : ''})</span></h2>`);
  H.push(`<ul>${f.cpus.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>`);
  H.push(`<p>${f.summary.cases} cases (<span class="shown-count">${f.summary.cases}</span> shown): <span class="v-diverge">diverge ${f.summary.verdicts.diverge}</span>, <span class="v-known">known deviation ${f.summary.verdicts.known}</span>, open ${f.summary.verdicts.open}, agree ${f.summary.verdicts.agree}, single ${f.summary.verdicts.single}, none ${f.summary.verdicts.none}; problems ${f.summary.problems}; unstable ${f.summary.unstable}.</p>`);
  H.push('<table class="runs"><thead><tr><th>run</th><th>machine</th><th>date</th><th>backends (CPU family)</th></tr></thead><tbody>');
  for (const r of f.runs) H.push(`<tr><td>${esc(r.source)}</td><td>${esc(r.machine)}</td><td>${esc(r.generated)}</td><td>${esc(r.backends.map((b) => `${b.name}${b.cpu ? ` (${b.cpu.familyName}: ${b.cpu.source})` : ''}`).join(', '))}</td></tr>`);
  H.push('</tbody></table>');
  if (f.recorded.length === 0) H.push(`<p class="muted">Recorded hardware: none under expected/hw/${esc(f.slug)}/ yet.</p>`);
  else H.push(`<p>Recorded hardware: ${f.recorded.map((r) => `${esc(r.provenance.cpu.name)} (microcode ${esc(r.provenance.cpu.microcode)}, ${esc(r.provenance.backend.name)} ${esc(r.provenance.backend.version)}, recorded ${esc(r.provenance.recorded)}${r.provenance.forced ? ', <b>forced: not hardware truth</b>' : ''})`).join('; ')}</p>`);
  H.push(`<table class="matrix" data-family="${esc(f.slug)}"><thead><tr><th data-sort="id">case</th><th data-sort="template">template</th>`);
  // columns sort by position (`col:N`), so a column name needs no quoting in a selector
  for (const [i, c] of f.columns.entries()) H.push(`<th data-sort="col:${i}" data-column="${esc(c.key)}" data-kind="${c.kind}" title="${esc(columnTitle(c))}">${esc(c.key)}<br><span class="muted">${esc(c.cpu?.familyName ?? 'CPU not known')}</span></th>`);
  H.push('<th data-sort="verdict">verdict</th></tr></thead>');
  const width = f.columns.length + 3;
  for (const c of f.cases) {
    const rank = VERDICT_RANK.indexOf(c.verdict);
    H.push(`<tbody class="case" data-id="${esc(c.id)}" data-template="${esc(c.template)}" data-verdict="${esc(c.verdictText)}" data-verdict-rank="${rank}">`);
    H.push(`<tr class="row"><td class="id"><button class="toggle" type="button" aria-expanded="false" title="decoded differences">+</button> ${esc(c.id)}</td><td>${esc(c.template)}</td>`);
    for (const col of f.columns) H.push(htmlCell(col, c.cells[col.key]));
    H.push(`<td class="verdict v-${c.verdict}">${esc(c.verdictText)}</td></tr>`);
    H.push(`<tr class="detail" hidden><td colspan="${width}">${htmlDiffs(c)}</td></tr></tbody>`);
  }
  H.push('</table>');

  const failures = failuresOf(f);
  H.push(`<section class="failures" data-family="${esc(f.slug)}"><h3>Failures (${failures.length})</h3>`);
  H.push(failures.length === 0 ? '<p>None.</p>' : `<ul>${failures.map((c) => `<li class="failure" data-id="${esc(c.id)}"><b>${esc(c.id)}</b>${htmlDiffs(c)}</li>`).join('')}</ul>`);
  H.push('</section>');
  const problems = problemsOf(f);
  H.push(`<section class="problems" data-family="${esc(f.slug)}"><h3>Problems: CRASH, TIMEOUT, ERROR (${problems.length})</h3>`);
  H.push(problems.length === 0 ? '<p>None.</p>' : `<ul>${problems.map((p) => `<li class="problem" data-id="${esc(p.c.id)}">${esc(p.c.id)} on ${esc(p.column)}: ${esc(p.cell.status)}${p.cell.reason ? `: ${esc(p.cell.reason)}` : ''}</li>`).join('')}</ul>`);
  H.push('</section>');
  const known = knownOf(f);
  H.push(`<section class="deviations" data-family="${esc(f.slug)}"><h3>Known deviations (${known.length})</h3>`);
  H.push('<p class="muted">Differences the deviation registry (expected/deviations.yaml) explains: not failures; anything an entry does not describe is still a failure above.</p>');
  if (f.deviations.length === 0) H.push('<p>None.</p>');
  else {
    H.push('<ul>');
    for (const d of f.deviations) {
      const e = registry.find((x) => x.id === d.id);
      const evidence = e ? ` — ${esc(e.summary)} <span class="muted">(manual: ${esc(e.evidence.manual)}; registry ${esc(`${e.file}:${e.line}`)}${e.finding ? `; finding <b class="finding">${esc(e.finding)}</b> (${esc(findingLink(e.finding))})` : ''}${e.evidence.threads.map((t) => `; <a href="${esc(t)}">${esc(t)}</a>`).join('')})</span>` : '';
      H.push(`<li class="deviation" data-entry="${esc(d.id)}"><b>${esc(d.id)}</b>${evidence}<br>cases: ${d.cases.map((id) => `<span class="known-case" data-id="${esc(id)}">${esc(id)}</span>`).join(', ')}</li>`);
    }
    H.push('</ul>');
  }
  H.push('</section></section>');
  return H.join('\n');
}

export function renderPublishHtml(m: Matrix, registry: readonly Deviation[] = []): string {
  const H: string[] = [];
  H.push('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">');
  // no network: everything is inline, and the policy forbids any fetch the page might attempt
  H.push('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; script-src \'unsafe-inline\'; img-src data:">');
  H.push('<title>svmconf conformance matrix per CPU family</title>');
  H.push(`<style>${CSS}</style></head><body>`);
  H.push('<h1>svmconf conformance matrix per CPU family</h1>');
  H.push(`<p class="muted">Generated ${esc(m.generated)} from ${m.inputs.length} results file(s): ${m.inputs.map((i) => `${esc(i.source)} (${esc(i.family)})`).join(', ')}.<br>Merge rule: ${esc(m.mergeRule)}</p>`);
  H.push(`<p>Families: ${m.families.map((f) => `<a href="#family-${esc(f.slug)}">${esc(f.name)}</a>`).join(', ')}</p>`);
  H.push('<p><input id="filter" type="search" placeholder="filter: words of a case id, template or verdict (all must match)" aria-label="filter"></p>');
  H.push('<p class="muted">Click a column header to sort; + opens the decoded field-by-field differences of a case. Cells: <span class="k-reference">reference</span> <span class="k-agree">= equal</span> <span class="k-informational">≈ undefined bits only</span> <span class="k-known">~ known deviation</span> <span class="k-diverge">≠ divergence</span> <span class="k-problem">CRASH/TIMEOUT/ERROR</span> <span class="k-notrun">SKIP/UNSUPPORTED</span>; dashed: an older run of the same column differs.</p>');
  H.push(versionsHtml(m));
  for (const f of m.families) H.push(htmlSection(f, registry));
  H.push(`<script>${SCRIPT}</script></body></html>`);
  return `${H.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// JUnit XML

const xmlText = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
  // XML 1.0 forbids most control characters, which a console may have passed through
  .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '?');

/**
 * The decoded differences a column takes part in (its own value differs, or it is the reference),
 * one line per run and field: the body of a JUnit failure and a KCIDB test's log excerpt.
 */
export function columnDiffLines(c: MatrixCase, column: string): string[] {
  return c.comparisons.flatMap((cmp) => cmp.diffs.filter((d) => d.values.some((v) => v.column === column) || cmp.reference === column)
    .map((d) => `${cmp.origin}: ${d.field}: ${d.values.map((v) => `${v.column} ${v.text}`).join('; ')}`));
}

/** One testsuite per family × column, one testcase per case. */
export function renderJunit(m: Matrix): string {
  const X: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const suites: string[] = [];
  let total = { tests: 0, failures: 0, errors: 0, skipped: 0 };
  for (const f of m.families) {
    for (const col of f.columns) {
      const cases: string[] = [];
      const n = { tests: 0, failures: 0, errors: 0, skipped: 0 };
      for (const c of f.cases) {
        const cell = c.cells[col.key];
        n.tests++;
        const attrs = `name="${xmlText(c.id)}" classname="${xmlText(`svmconf.${f.slug}.${c.template}`)}"`;
        if (!cell) {
          n.skipped++;
          cases.push(`<testcase ${attrs}><skipped message="no result in this column"/></testcase>`);
          continue;
        }
        const diffs = columnDiffLines(c, col.key);
        switch (cell.kind) {
          case 'diverge':
            n.failures++;
            cases.push(`<testcase ${attrs}><failure message="${xmlText(`record differs from the reference in a defined bit no registry entry explains`)}" type="divergence">${xmlText(diffs.join('\n'))}</failure></testcase>`);
            break;
          case 'problem':
            n.errors++;
            cases.push(`<testcase ${attrs}><error message="${xmlText(`${cell.status}${cell.reason ? `: ${cell.reason}` : ''}`)}" type="${cell.status}"/></testcase>`);
            break;
          case 'notrun':
          case 'missing':
            n.skipped++;
            cases.push(`<testcase ${attrs}><skipped message="${xmlText(`${cell.status}${cell.reason ? `: ${cell.reason}` : ''}`)}"/></testcase>`);
            break;
          case 'known': {
            const ids = (cell.deviations ?? []).join(', ');
            cases.push(`<testcase ${attrs}><properties><property name="known-deviation" value="${xmlText(ids)}"/></properties><system-out>${xmlText(`known deviation ${ids} (expected/deviations.yaml)\n${diffs.join('\n')}`)}</system-out></testcase>`);
            break;
          }
          default:
            cases.push(`<testcase ${attrs}/>`);
        }
      }
      total = { tests: total.tests + n.tests, failures: total.failures + n.failures, errors: total.errors + n.errors, skipped: total.skipped + n.skipped };
      const props = `<properties><property name="family" value="${xmlText(f.name)}"/><property name="column-kind" value="${col.kind}"/>${col.cpu ? `<property name="cpu" value="${xmlText(`${col.cpu.familyName}; ${col.cpu.source}`)}"/>` : ''}${col.version ? `<property name="version" value="${xmlText(col.version)}"/>` : ''}</properties>`;
      suites.push(`<testsuite name="${xmlText(`${f.slug} / ${col.key}`)}" tests="${n.tests}" failures="${n.failures}" errors="${n.errors}" skipped="${n.skipped}" timestamp="${m.generated}">${props}\n${cases.join('\n')}\n</testsuite>`);
    }
  }
  X.push(`<testsuites name="svmconf" tests="${total.tests}" failures="${total.failures}" errors="${total.errors}" skipped="${total.skipped}">`);
  X.push(...suites, '</testsuites>');
  return `${X.join('\n')}\n`;
}

/** Write the four files into `dir` (atomically each); returns their paths. */
export async function writePublished(dir: string, m: Matrix, registry: readonly Deviation[] = []): Promise<Record<keyof typeof PUBLISH_FILES, string>> {
  await mkdir(dir, { recursive: true });
  const out = {
    markdown: join(dir, PUBLISH_FILES.markdown), html: join(dir, PUBLISH_FILES.html), json: join(dir, PUBLISH_FILES.json), junit: join(dir, PUBLISH_FILES.junit),
  };
  await writeFileAtomic(out.markdown, renderPublishMarkdown(m, registry));
  await writeFileAtomic(out.html, renderPublishHtml(m, registry));
  await writeFileAtomic(out.json, stableJson(m));
  await writeFileAtomic(out.junit, renderJunit(m));
  return out;
}
