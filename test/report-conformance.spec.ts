// Conformance per implementation (report/conformance.ts): each column counted on its own, per
// template and per parameter value, the same in a run's view (terminal, matrix.md, `compare --json`)
// and in publish's family sections (matrix.json, matrix.md).
//
// The fixture is test/fixtures/publish/zen4.results.json (13 cases, model and QEMU 7.2 TCG, where
// the registry explains the ICEBP #UD and the IDT-gate error code), changed by hand so that every
// outcome occurs once or more on qemu-tcg; the expected counts are counted from the list below.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Results } from '../core/types.ts';
import { compareResults } from '../report/compare.ts';
import { conformance, type ColumnConformance } from '../report/conformance.ts';
import type { Deviation } from '../report/deviations.ts';
import { renderMarkdown } from '../report/markdown.ts';
import { writeResults } from '../report/results.ts';
import { buildMatrix } from '../report/publish.ts';
import { renderPublishMarkdown } from '../report/publish-render.ts';
import { loadRegistry } from '../suite/select.ts';
import { loadFixture, tweak } from './support/publish-fixtures.ts';

const F = 'l1.faults';
const UD2 = `${F}/kind=ud2,prefix=none`;
const PF_FETCH = `${F}/kind=pf_fetch,prefix=none`;
const PF_WRITE_DS = `${F}/kind=pf_write,prefix=ds`;

/**
 * qemu-tcg on the 13 cases:
 *   l1.faults  kind=ud2        none: diverge (bit 0 of its vector flipped)   ds: agree
 *              kind=pf_read    none: agree                                   ds: agree
 *              kind=pf_write   none: agree                                   ds: problem (CRASH)
 *              kind=pf_fetch   none: not run (UNSUPPORTED)
 *              kind=gp_idt_limit none, ds: known (the error code vector*16+2)
 *              kind=df_idt_limit none, ds: agree
 *   l1.icebp   prefix=none, ds: known (#UD)
 */
function fixture(): Results {
  const r = tweak(loadFixture('zen4'), UD2, 'qemu-tcg');
  r.cases.find((c) => c.id === PF_FETCH)!.results['qemu-tcg'] = { status: 'UNSUPPORTED', reason: 'needs what the fixture says' };
  r.cases.find((c) => c.id === PF_WRITE_DS)!.results['qemu-tcg'] = { status: 'CRASH', reason: 'a crash put in by hand' };
  return r;
}

const counts = (x: { agree: number; known: number; open: number; diverge: number; notRun: number; problem: number }) =>
  [x.agree, x.known, x.open, x.diverge, x.notRun, x.problem];

describe('report/conformance: each column per template and per parameter value', () => {
  let registry: Deviation[];
  let results: Results;
  let tcg: ColumnConformance;
  before(async () => {
    registry = await loadRegistry();
    results = fixture();
    const per = conformance(results, compareResults(results, { deviations: registry }), registry);
    assert.deepEqual(per.map((p) => p.column), ['qemu-tcg'], 'the model is the reference, not a column of its own');
    tcg = per[0]!;
  });

  it('counts the column in total and per template: agree, known, open, diverge, not run, problem', () => {
    assert.equal(tcg.version, 'QEMU 7.2.22');
    assert.deepEqual(counts(tcg.total), [6, 4, 0, 1, 1, 1]);
    assert.deepEqual(tcg.templates.map((t) => [t.template, ...counts(t)]), [[F, 6, 2, 0, 1, 1, 1], ['l1.icebp', 0, 2, 0, 0, 0, 0]]);
    assert.deepEqual(tcg.templates.map((t) => t.entries), [['qemu-idt-gate-error-code-x16'], ['qemu-icebp-ud', 'qemu-icebp-ud-prefixed']]);
    assert.deepEqual(tcg.total.entries, tcg.deviations);
    assert.deepEqual(tcg.notRunReasons, [{ reason: 'needs what the fixture says', cases: 1 }]);
  });

  it('counts per template, axis and value, with the entries behind each known deviation', () => {
    const row = (template: string, axis: string, value: string) => tcg.axes.find((a) => a.template === template && a.axis === axis && a.value === value);
    assert.deepEqual(tcg.axes.map((a) => `${a.template} ${a.axis}=${a.value}`), [
      `${F} kind=ud2`, `${F} kind=pf_read`, `${F} kind=pf_write`, `${F} kind=pf_fetch`, `${F} kind=gp_idt_limit`, `${F} kind=df_idt_limit`,
      `${F} prefix=none`, `${F} prefix=ds`, 'l1.icebp prefix=none', 'l1.icebp prefix=ds',
    ], 'by template, then by parameter, each value once, in the order the cases give them');
    // prefix=none: ud2 diverge, pf_read agree, pf_write agree, pf_fetch not run, gp_idt_limit known, df_idt_limit agree
    assert.deepEqual(counts(row(F, 'prefix', 'none')!), [3, 1, 0, 1, 1, 0]);
    // prefix=ds: ud2 agree, pf_read agree, pf_write problem, gp_idt_limit known, df_idt_limit agree
    assert.deepEqual(counts(row(F, 'prefix', 'ds')!), [3, 1, 0, 0, 0, 1]);
    assert.deepEqual(counts(row(F, 'kind', 'ud2')!), [1, 0, 0, 1, 0, 0]);
    assert.deepEqual(counts(row(F, 'kind', 'pf_write')!), [1, 0, 0, 0, 0, 1]);
    assert.deepEqual(counts(row(F, 'kind', 'pf_fetch')!), [0, 0, 0, 0, 1, 0]);
    assert.deepEqual(counts(row(F, 'kind', 'gp_idt_limit')!), [0, 2, 0, 0, 0, 0]);
    assert.deepEqual(row(F, 'kind', 'gp_idt_limit')!.entries, ['qemu-idt-gate-error-code-x16']);
    assert.deepEqual(row(F, 'kind', 'ud2')!.entries, [], 'a divergence names no entry');
    assert.deepEqual(row('l1.icebp', 'prefix', 'none')!.entries, ['qemu-icebp-ud']);
    assert.deepEqual(row('l1.icebp', 'prefix', 'ds')!.entries, ['qemu-icebp-ud-prefixed']);
    // every value of an axis adds up to its template's row
    for (const t of tcg.templates) {
      for (const axis of new Set(tcg.axes.filter((a) => a.template === t.template).map((a) => a.axis))) {
        const sum = tcg.axes.filter((a) => a.template === t.template && a.axis === axis).reduce((n, a) => n + counts(a).reduce((x, y) => x + y, 0), 0);
        assert.equal(sum, counts(t).reduce((x, y) => x + y, 0), `${t.template} ${axis}`);
      }
    }
  });

  it('names the column\'s registry entries and their findings, from the registry', () => {
    assert.deepEqual(tcg.deviations, ['qemu-idt-gate-error-code-x16', 'qemu-icebp-ud', 'qemu-icebp-ud-prefixed']);
    const expected = [...new Set(tcg.deviations.map((id) => registry.find((d) => d.id === id)?.finding))];
    assert.ok(expected.every((f) => typeof f === 'string'), 'every entry of the registry belongs to a finding (expected/findings.yaml)');
    assert.deepEqual(tcg.findings, expected);
    assert.equal(tcg.findings.length, 2, 'the two ICEBP entries are one finding');
  });

  it('publish: a family section of one run has the same conformance as the run view, under the matrix\'s column keys', () => {
    // a second version of the same backend (a pinned peer) and a reference model column beside it
    const r = structuredClone(results);
    r.backends.push(
      { ...r.backends.find((b) => b.name === 'qemu-tcg')!, name: 'qemu-tcg@11.1', version: 'QEMU 11.1.3', family: 'qemu-tcg', peer: 'qemu@11.1' },
      { ...r.backends.find((b) => b.name === 'model')!, name: 'model@amd-10h', reference: 'model@amd-10h' },
    );
    for (const c of r.cases) {
      c.results['qemu-tcg@11.1'] = structuredClone(c.results['qemu-tcg']!);
      c.results['model@amd-10h'] = structuredClone(c.results.model!);
    }
    const run = conformance(r, compareResults(r, { deviations: registry }), registry);
    assert.deepEqual(run.map((p) => [p.column, p.family, p.peer]), [['qemu-tcg', undefined, undefined], ['qemu-tcg@11.1', 'qemu-tcg', 'qemu@11.1']]);
    assert.ok(run[1]!.total.diverge > run[0]!.total.diverge, 'QEMU 7.2\'s ICEBP #UD is no known deviation of 11.1');
    const m = buildMatrix([{ source: 'run.json', results: r }], { deviations: registry });
    assert.equal(m.families.length, 1);
    const f = m.families[0]!;
    const keyOf = (backend: string) => f.columns.find((c) => c.backend === backend)!.key;
    assert.deepEqual(f.conformance, run.map((p) => ({ ...p, column: keyOf(p.column) })));
    assert.match(f.conformance[0]!.column, /^qemu-tcg @ /);
  });

  it('matrix.md of a run and of publish: the tables, the values folded, links to the entries and findings that resolve', () => {
    const md = renderMarkdown(results, { deviations: registry, comparison: compareResults(results, { deviations: registry }) });
    const m = buildMatrix([{ source: 'run.json', results }], { deviations: registry });
    const pmd = renderPublishMarkdown(m, registry);
    const key = m.families[0]!.conformance[0]!.column;
    for (const [page, col] of [[md, 'qemu-tcg'], [pmd, key]] as const) {
      const section = page.slice(page.indexOf('Conformance per implementation'));
      assert.ok(section.includes(`| \`${F}\` | 6 = · 2 ~ · **1 ≠** · 1 – · 1 problems |`), 'the template row');
      assert.match(section, /<details><summary>Per parameter value \(10 rows\)<\/summary>[\s\S]*\| `l1\.faults` \| `prefix` \| `none` \| 3 = · 1 ~ · \*\*1 ≠\*\* · 1 – \|[\s\S]*<\/details>/);
      const line = section.split('\n').find((l) => l.startsWith(`- \`${col}\` (QEMU 7.2.22)`))!;
      assert.ok(line, `the column's line in ${page === md ? 'the run' : 'publish'}`);
      for (const f of tcg.findings) assert.ok(line.includes(`](docs/findings.md#${f})`), f);
      const anchors = [...line.matchAll(/\]\(#([^)]+)\)/g)].map((x) => x[1]!);
      assert.equal(anchors.length, tcg.deviations.length);
      for (const a of anchors) assert.ok(page.includes(`<a id="${a}"></a>`), `the link #${a} has its target on the page`);
    }
    // publish: the headline of the family section, before its case table
    assert.ok(pmd.indexOf('### Conformance per implementation') < pmd.indexOf('| case |'));
  });

  it('svmconf compare: the summary without --verbose, every case\'s line with it', async function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), 'svmconf-conformance-'));
    try {
      const file = join(dir, 'results.json');
      await writeResults(file, results);
      const compare = async (...extra: string[]): Promise<string> => {
        const bin = join(resolve(import.meta.dirname, '..'), 'bin', 'svmconf.js');
        // exit 2: the fixture holds a CRASH and a divergence
        const r = await promisify(execFile)(process.execPath, [bin, 'compare', file, ...extra]).catch((e: { code: number; stdout: string }) => e);
        assert.equal((r as { code?: number }).code, 2);
        return r.stdout;
      };
      const caseLine = /^ {2}kind=pf_read,prefix=none\s/m;
      const summary = await compare();
      assert.match(summary, /^Conformance per implementation/m);
      assert.match(summary, /^ {2}qemu-tcg\s+6 agree · 4 known · 0 open · 1 diverge · 1 not run · 1 problems {2}← diverges$/m);
      assert.match(summary, /diverges: l1\.faults 1 \(kind ud2:1; prefix none:1\)/);
      assert.match(summary, /l1\.faults\/kind=ud2,prefix=none {2}diverge/, 'the divergence, decoded');
      assert.doesNotMatch(summary, caseLine, 'no line per case');
      const verbose = await compare('--verbose');
      assert.match(verbose, caseLine);
      assert.ok(verbose.indexOf('Conformance per implementation') > verbose.search(caseLine), 'the case table, then the summary');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
