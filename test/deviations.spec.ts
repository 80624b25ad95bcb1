// The deviation registry: validation errors name file and line; an entry covers a divergence only
// for its backend, version, case globs, fields and observed values; anything else still diverges.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseOutcome, FieldDecode, FieldType, RecordField, Results } from '../core/types.ts';
import { compareCase, compareResults, deviationsByCase, type CaseComparison } from '../report/compare.ts';
import { DeviationError, findCovering, observedMatches, parseDeviations, parseObserved, type Deviation } from '../report/deviations.ts';
import { renderMarkdown } from '../report/markdown.ts';
import { validateResults } from '../report/results.ts';
import { renderTable } from '../report/table.ts';
import { shortVersion, versionView } from '../report/versions.ts';
import { conformance } from '../report/conformance.ts';
import { buildMatrix } from '../report/publish.ts';
import { renderPublishHtml, renderPublishMarkdown } from '../report/publish-render.ts';
import { thrown } from './support/thrown.ts';

const SIZES: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };
function layout(spec: Array<[string, FieldType, FieldDecode]>): RecordField[] {
  let offset = 0;
  return spec.map(([name, type, decode]) => {
    const f: RecordField = { name, type, offset, size: SIZES[type], decode, doc: name };
    offset += f.size;
    return f;
  });
}
function record(l: readonly RecordField[], values: Record<string, bigint>): string {
  return l.map((f) => {
    let v = BigInt.asUintN(8 * f.size, values[f.name] ?? 0n);
    let s = '';
    for (let i = 0; i < f.size; i++) {
      s += (v & 0xffn).toString(16).padStart(2, '0');
      v >>= 8n;
    }
    return s;
  }).join('');
}

const L = layout([
  ['exit_code', 'u64', 'exitcode'],
  ['exit_int_info', 'u64', 'eventinfo'],
  ['frame_rip', 'u64', 'offset'],
  ['hits', 'u64', 'count'],
]);
const CASE = 'svm.bp_intercept/insn=cc,nrips=off';

const ENTRY = `
- id: qemu-int3-soft
  backend: qemu-tcg
  versions: { range: "QEMU 7.2", match: "^QEMU 7\\\\.2\\\\.", checked: ["QEMU 7.2.22"] }
  cases: ["svm.bp_intercept/insn=cc,*"]
  fields: [exit_code, exit_int_info]
  observed: { exit_code: "0x4d", exit_int_info: "V=1 TYPE=SOFT_INT VEC=3" }
  expected: "VMEXIT_EXCP_BP, EXITINTINFO V=0"
  summary: "INT3 misses the #BP intercept"
  evidence:
    manual: "APM vol. 2 §15.12"
    peer: [{ repo: qemu/qemu, path: target/i386/tcg/excp_helper.c, line: 98, note: "is_int path" }]
`;

const registry = (): Deviation[] => parseDeviations(ENTRY, 'dev.yaml');
const outcome = (id: string, model: Record<string, bigint>, qemu: Record<string, bigint>): CaseOutcome => ({
  id, template: id.split('/')[0]!, params: {},
  results: { model: { status: 'OK', record: record(L, model) }, 'qemu-tcg': { status: 'OK', record: record(L, qemu) } },
});
const MODEL = { exit_code: 0x43n, exit_int_info: 0n };
const QEMU = { exit_code: 0x4dn, exit_int_info: 0x8000_0403n };
const versions = { 'qemu-tcg': 'QEMU 7.2.22', model: '0.1.0' };

const errorOf = (text: string): DeviationError => thrown(() => parseDeviations(text, 'expected/deviations.yaml'), DeviationError);

describe('deviations: validation', () => {
  it('loads the shipped registry', () => {
    const file = join(import.meta.dirname, '..', 'expected', 'deviations.yaml');
    const d = parseDeviations(readFileSync(file, 'utf8'), file);
    assert.ok(d.length >= 5);
    for (const e of d) assert.ok(e.evidence.manual && (e.evidence.peer.length + e.evidence.threads.length) > 0, e.id);
  });

  it('an empty file is an empty registry', () => {
    assert.deepEqual(parseDeviations('# nothing yet\n'), []);
  });

  it('requires manual evidence, naming the line of the evidence', () => {
    const e = errorOf(ENTRY.replace('    manual: "APM vol. 2 §15.12"\n', ''));
    assert.equal(e.file, 'expected/deviations.yaml');
    assert.equal(e.line, 11);
    assert.match(e.message, /evidence.*manual/);
  });

  it('requires a peer source or a thread besides the manual', () => {
    const e = errorOf(ENTRY.replace(/    peer: .*\n/, ''));
    assert.match(e.message, /^expected\/deviations\.yaml:11: .*peer source reference/);
  });

  it('rejects a bad id, an unknown key, an observed field not in fields, a bad observed value, a bad regex', () => {
    assert.match(errorOf(ENTRY.replace('id: qemu-int3-soft', 'id: Qemu_INT3')).message, /:2: `\[0\]\.id`: .*kebab-case/);
    assert.match(errorOf(ENTRY.replace('  summary:', '  sumary: x\n  summary:')).message, /:9: .*unknown key `sumary`/);
    assert.match(errorOf(ENTRY.replace('exit_code: "0x4d"', 'rip: "0x4d"')).message, /:7: .*unknown key `rip`/);
    assert.match(errorOf(ENTRY.replace('VEC=3"', 'VEC=3 RF=1"')).message, /:7: .*not a mix/);
    assert.match(errorOf(ENTRY.replace('match: "^QEMU', 'match: "(QEMU')).message, /:4: .*not a regular expression/);
    assert.match(errorOf(ENTRY.replace('line: 98', 'line: 0')).message, /:12: .*line number/);
  });

  it('versions: range, match and the versions checked are required; each checked version is in the range', () => {
    assert.match(errorOf(ENTRY.replace(/  versions: .*\n/, '  versions: "QEMU 7.2"\n')).message, /:4: .*must be \{range, match.*the versions the entry was seen on/);
    assert.match(errorOf(ENTRY.replace(', checked: ["QEMU 7.2.22"]', '')).message, /:4: .*needs `checked`/);
    assert.match(errorOf(ENTRY.replace('checked: ["QEMU 7.2.22"]', 'checked: ["QEMU 7.2.22", "QEMU 11.1.3"]')).message, /:4: .*`QEMU 11\.1\.3` is not matched by/);
  });

  it('versions.fixed: the version that fixed an entry must lie outside its match, and needs `by`', () => {
    const fixed = (f: string) => ENTRY.replace('checked: ["QEMU 7.2.22"] }', `checked: ["QEMU 7.2.22"], fixed: ${f} }`);
    const ok = parseDeviations(fixed('{ in: "QEMU 11.1.3", by: "commit 1234567" }'));
    assert.deepEqual(ok[0]!.versions.fixed, { in: 'QEMU 11.1.3', by: 'commit 1234567' });
    assert.match(errorOf(fixed('{ in: "QEMU 7.2.23", by: "x" }')).message, /:4: .*`QEMU 7\.2\.23` is matched by .* outside its range/);
    assert.match(errorOf(fixed('{ in: "QEMU 11.1.3" }')).message, /:4: .*needs `by`/);
  });

  it('rejects duplicate ids, with the line of the first', () => {
    const e = errorOf(ENTRY + ENTRY);
    assert.match(e.message, /already used by the entry at line 2/);
  });

  it('refuses a `#` comment on a value line (it would cut "raises #UD" to "raises")', () => {
    const e = errorOf('- id: x\n  summary: QEMU raises #UD here\n');
    assert.match(e.message, /starts a YAML comment \("#UD here"\)/);
    assert.equal(e.line, 2);
  });

  it('rejects a map at the top and invalid YAML', () => {
    assert.match(errorOf('id: x\n').message, /a list of entries/);
    assert.match(errorOf('- id: [\n').message, /not valid YAML/);
  });
});

describe('deviations: observed values', () => {
  const obs = (s: unknown) => {
    const o = parseObserved(s);
    assert.ok(typeof o !== 'string', String(o));
    return o;
  };
  it('plain numbers compare the whole field', () => {
    assert.ok(observedMatches(obs('0xffffffff'), 0xffff_ffffn, 8));
    assert.ok(!observedMatches(obs('0xffffffff'), 0xffff_ffff_ffff_ffffn, 8));
    assert.ok(!observedMatches(obs('0x1ff'), 0xffn, 1), 'a value wider than the field never matches');
  });
  it('signed offsets, mnemonics, event parts, RFLAGS flags, masks', () => {
    assert.ok(observedMatches(obs('-0x2'), 0xffff_ffff_ffff_fffen, 8));
    assert.ok(observedMatches(obs('#UD'), 6n, 8));
    const ev = obs('V=1 TYPE=SOFT_INT VEC=3');
    assert.ok(observedMatches(ev, 0x8000_0403n, 8));
    assert.ok(observedMatches(ev, 0x1234_0000_8000_0403n, 8), 'ERR not named: not compared');
    assert.ok(!observedMatches(ev, 0x8000_0303n, 8), 'TYPE 3 is not TYPE 4');
    assert.ok(observedMatches(obs('RF=0'), 0x896n, 8));
    assert.ok(!observedMatches(obs('RF=0'), 0x10896n, 8));
    assert.ok(observedMatches(obs({ value: '0x400', mask: '0x700' }), 0x8000_0403n, 8));
  });
});

describe('deviations: comparison', () => {
  it('a case whose every differing field is covered is `known`, not a divergence', () => {
    const c = compareCase(outcome(CASE, MODEL, QEMU), L, { deviations: registry(), versions });
    assert.equal(c.verdict, 'known');
    assert.deepEqual(c.known, ['qemu-tcg']);
    assert.deepEqual(c.diverging, []);
    assert.deepEqual(c.deviations, [{ id: 'qemu-int3-soft', backend: 'qemu-tcg', against: 'model', fields: ['exit_code', 'exit_int_info'] }]);
  });

  it('a field the entry does not list still diverges', () => {
    const c = compareCase(outcome(CASE, MODEL, { ...QEMU, hits: 1n }), L, { deviations: registry(), versions });
    assert.equal(c.verdict, 'diverge');
    assert.deepEqual(c.diverging, ['qemu-tcg']);
    assert.equal(c.diffs.find((d) => d.field === 'hits')?.known.length, 0);
  });

  it('a new value on a covered field is still a divergence', () => {
    const c = compareCase(outcome(CASE, MODEL, { ...QEMU, exit_code: 0x4bn }), L, { deviations: registry(), versions });
    assert.equal(c.verdict, 'diverge');
    const other = compareCase(outcome(CASE, MODEL, { ...QEMU, exit_int_info: 0x8000_0303n }), L, { deviations: registry(), versions });
    assert.equal(other.verdict, 'diverge');
  });

  it('the glob, the backend and the version must match', () => {
    const other = compareCase(outcome('svm.bp_intercept/insn=cd03,nrips=off', MODEL, QEMU), L, { deviations: registry(), versions });
    assert.equal(other.verdict, 'diverge');
    const v8 = compareCase(outcome(CASE, MODEL, QEMU), L, { deviations: registry(), versions: { ...versions, 'qemu-tcg': 'QEMU 8.2.0' } });
    assert.equal(v8.verdict, 'diverge');
    const noVersion = compareCase(outcome(CASE, MODEL, QEMU), L, { deviations: registry(), versions: {} });
    assert.equal(noVersion.verdict, 'diverge', 'a version pattern needs a version to match');
    assert.equal(findCovering(registry(), { backend: 'qemu-kvm', version: 'QEMU 7.2.22', caseId: CASE, field: 'exit_code', value: 0x4dn, size: 8 }), undefined);
  });

  it("an entry applies to every column of its backend's family whose version it matches (qemu-tcg@11.1)", () => {
    const col = 'qemu-tcg@11.1';
    const o = (v: string): CaseComparison => compareCase({ ...outcome(CASE, MODEL, QEMU), results: { model: { status: 'OK', record: record(L, MODEL) }, [col]: { status: 'OK', record: record(L, QEMU) } } }, L, { deviations: registry(), versions: { ...versions, [col]: v } });
    const seen = o('QEMU 7.2.22');
    assert.equal(seen.verdict, 'known');
    assert.deepEqual(seen.deviations.map((d) => d.backend), [col], 'the match names the column, the entry its family');
    assert.equal(o('QEMU 11.1.3').verdict, 'diverge', 'outside the entry\'s match the same value is a divergence');
    const renamed = compareCase({ ...outcome(CASE, MODEL, QEMU), results: { model: { status: 'OK', record: record(L, MODEL) }, odd: { status: 'OK', record: record(L, QEMU) } } }, L, { deviations: registry(), versions: { ...versions, odd: 'QEMU 7.2.22' }, families: { odd: 'qemu-tcg' } });
    assert.equal(renamed.verdict, 'known', 'BackendInfo.family names the family when the column name does not');
  });

  it('an entry for the reference backend explains the other backend differing from it', () => {
    const o: CaseOutcome = {
      id: CASE, template: 'svm.bp_intercept', params: {},
      results: { 'qemu-tcg': { status: 'OK', record: record(L, QEMU) }, kvm: { status: 'OK', record: record(L, MODEL) } },
    };
    const c = compareCase(o, L, { deviations: registry(), versions, preference: ['qemu-tcg'] });
    assert.equal(c.reference, 'qemu-tcg');
    assert.equal(c.verdict, 'known');
    assert.deepEqual(c.deviations, [{ id: 'qemu-int3-soft', backend: 'qemu-tcg', against: 'kvm', fields: ['exit_code', 'exit_int_info'] }]);
  });

  it('reports: matrix section with evidence, terminal table, results.json `deviations`, exit-code summary', () => {
    const results: Results = {
      schema: 'svmconf-results/1', generated: '2026-01-01T00:00:00.000Z',
      host: { vendor: 'AuthenticAMD', family: 0x19, model: 0x11, stepping: 1, modelName: 'AMD EPYC', kernel: '6.1' },
      backends: ['model', 'qemu-tcg'].map((name) => ({
        name, kind: name === 'model' ? 'model' as const : 'emulator' as const, available: true, reason: '', version: versions[name as keyof typeof versions],
        features: { svm: { present: true, absent: true, reason: '' }, npt: { present: true, absent: true, reason: '' }, nrips: { present: true, absent: true, reason: '' } },
      })),
      layouts: { 'svm.bp_intercept': L },
      cases: [outcome(CASE, MODEL, QEMU), outcome('svm.bp_intercept/insn=cd03,nrips=off', MODEL, QEMU)],
    };
    const deviations = registry();
    const cmp = compareResults(results, { deviations });
    assert.equal(cmp.summary.verdicts.known, 1);
    assert.equal(cmp.summary.verdicts.diverge, 1);
    results.deviations = deviationsByCase(cmp);
    assert.deepEqual(Object.keys(results.deviations), [CASE]);
    validateResults(JSON.parse(JSON.stringify(results)));
    const md = renderMarkdown(results, { deviations, comparison: cmp });
    assert.match(md, /## Known deviations \(1\)/);
    assert.match(md, /### Entry `qemu-int3-soft`/);
    assert.match(md, /\*\*Source:\*\* `qemu\/qemu target\/i386\/tcg\/excp_helper\.c:98`/);
    assert.match(md, /## Divergences \(1\)/);
    const table = renderTable(results, { deviations, comparison: cmp });
    assert.match(table, /^ {2}qemu-int3-soft {2}qemu-tcg QEMU 7\.2, 1 case$/m, 'the entry in one line');
    assert.doesNotMatch(table, /known deviation \(qemu-int3-soft\)/, 'the case lines only with --verbose');
    assert.match(table, /Divergences \(1\)/);
    const verbose = renderTable(results, { deviations, comparison: cmp, verbose: true });
    assert.match(verbose, /known deviation \(qemu-int3-soft\)/);
    assert.match(verbose, /Divergences \(1\)/);
  });
});

describe('deviations: the version view (report/versions.ts)', () => {
  const OLD = 'qemu-tcg';
  const NEW = 'qemu-tcg@11.1';
  const feats = { svm: { present: true, absent: true, reason: '' }, npt: { present: true, absent: true, reason: '' }, nrips: { present: true, absent: true, reason: '' } };
  /** model, the host's QEMU 7.2 and the pinned 11.1: `fixedOnNew` says whether 11.1 gives the model's record. */
  function run(fixedOnNew: boolean): Results {
    const outcomeOf = (id: string): CaseOutcome => ({
      id, template: 'svm.bp_intercept', params: {},
      results: {
        model: { status: 'OK', record: record(L, MODEL) },
        [OLD]: { status: 'OK', record: record(L, QEMU) },
        [NEW]: { status: 'OK', record: record(L, fixedOnNew ? MODEL : QEMU) },
      },
    });
    return {
      schema: 'svmconf-results/1', generated: '2026-01-01T00:00:00.000Z',
      host: { vendor: 'AuthenticAMD', family: 0x19, model: 0x11, stepping: 1, modelName: 'AMD EPYC', kernel: '6.1' },
      backends: [
        { name: 'model', kind: 'model', available: true, reason: '', version: '0.1.0', features: feats },
        { name: OLD, kind: 'emulator', available: true, reason: '', version: 'QEMU 7.2.22', features: feats },
        { name: NEW, kind: 'emulator', available: true, reason: '', version: 'QEMU 11.1.3', family: 'qemu-tcg', peer: 'qemu@11.1', packages: { 'qemu-system-x86': '1:11.1.3+ds-1' }, features: feats },
      ],
      layouts: { 'svm.bp_intercept': L },
      cases: [outcomeOf(CASE), outcomeOf('svm.bp_intercept/insn=cc,nrips=on')],
    };
  }

  it('an entry fixed on the newer column shows on the old one and is gone on the new one', () => {
    const results = run(true);
    const cmp = compareResults(results, { deviations: registry() });
    const view = versionView(results, cmp, registry());
    assert.equal(view.families.length, 1);
    const f = view.families[0]!;
    assert.deepEqual(f.columns.map((c) => [c.column, c.version, c.agree, c.known, c.diverge]), [[OLD, 'QEMU 7.2.22', 0, 2, 0], [NEW, 'QEMU 11.1.3', 2, 0, 0]]);
    assert.deepEqual(f.entries[0]!.columns.map((c) => [c.state, c.cases]), [['shows', 2], ['gone', 2]]);
    const md = renderMarkdown(results, { deviations: registry(), comparison: cmp });
    assert.match(md, /## Versions[\s\S]*\| `qemu-int3-soft` \| shows \(2\) \| gone \(2 agree\) \| seen on QEMU 7\.2\.22; still present in QEMU 7\.2\.22 \|/);
    assert.match(md, /qemu-system-x86 1:11\.1\.3\+ds-1/);
    const table = renderTable(results, { deviations: registry(), comparison: cmp });
    assert.match(table, /qemu-int3-soft: qemu-tcg shows \(2\); qemu-tcg@11\.1 gone \(2 agree\)/);
    // conformance per implementation: each column counted on its own, per template
    const per = conformance(results, cmp);
    assert.deepEqual(per.map((p) => [p.column, p.total.agree, p.total.known, p.total.diverge, p.total.entries]), [[OLD, 0, 2, 0, ['qemu-int3-soft']], [NEW, 2, 0, 0, []]]);
    assert.deepEqual(per[0]!.templates.map((t) => [t.template, t.known]), [['svm.bp_intercept', 2]]);
    assert.match(md, /## Conformance per implementation[\s\S]*\| `svm\.bp_intercept` \| 2 ~ \| 2 = \|/);
    assert.match(md, /### `svm\.bp_intercept`\n\n<details><summary>2 cases: 0 agree, 2 known deviation, 0 open, 0 single<\/summary>/, 'nothing diverges: folded');
    // publish: matrix.json carries the view, and matrix.md and the HTML put it before the families
    const m = buildMatrix([{ source: 'run.json', results }], { deviations: registry() });
    assert.equal(m.versions[0]?.view.families[0]?.family, 'qemu-tcg');
    const pmd = renderPublishMarkdown(m, registry());
    assert.ok(pmd.indexOf('## Versions') > 0 && pmd.indexOf('## Versions') < pmd.indexOf('(family '), 'versions come first');
    const html = renderPublishHtml(m, registry());
    assert.ok(html.indexOf('id="versions"') < html.indexOf('id="family-'), 'versions come first in the page');
    assert.match(html, /<td class="v-gone">gone \(2 agree\)<\/td>/);
  });

  it('shortVersion names a kvm-tcg column by its kernel and QEMU, and leaves other versions alone', () => {
    assert.equal(shortVersion('KVM API 12, Linux 7.3.4+deb13-amd64, kvm_amd; nested state 4224 bytes; in QEMU 11.1.3 TCG (-cpu max), linux-binary-7.3.4'), 'Linux 7.3.4+deb13-amd64 on QEMU 11.1.3 TCG');
    assert.equal(shortVersion('QEMU 11.1.3'), 'QEMU 11.1.3');
  });

  it('the same value on a version outside the entry is a divergence, and the view says the entry does not cover it', () => {
    const results = run(false);
    const cmp = compareResults(results, { deviations: registry() });
    assert.equal(cmp.summary.verdicts.diverge, 2, 'the 7.2 entry does not explain 11.1');
    const e = versionView(results, cmp, registry()).families[0]!.entries[0]!;
    assert.deepEqual(e.columns.map((c) => [c.state, c.cases, c.now]), [['shows', 2, []], ['differs', 2, []]]);
  });
});
