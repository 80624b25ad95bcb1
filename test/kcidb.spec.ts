// `svmconf publish --kcidb` (report/kcidb.ts): the merged matrix of the publish fixtures
// (test/support/publish-fixtures.ts) as KCIDB reports, validated with ajv against the transcription
// of KCIDB's I/O schema v5.3 in test/support/kcidb-schema.ts, draft-07 as upstream validates it.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import formats from 'ajv-formats';
import { KCIDB_SCHEMA_NAME, KcidbError, renderKcidb, serializeKcidb, type KcidbReport, type KcidbTest } from '../report/kcidb.ts';
import type { CellKind } from '../report/format.ts';
import { buildMatrix, type Matrix } from '../report/publish.ts';
import { loadRegistry } from '../suite/select.ts';
import { KCIDB_V5_3_SCHEMA } from './support/kcidb-schema.ts';
import { FIXTURES, loadFixture, tweak } from './support/publish-fixtures.ts';

const ROOT = resolve(import.meta.dirname, '..');
const UD2 = 'l1.faults/kind=ud2,prefix=none';
const ICEBP = 'l1.icebp/prefix=none';

const ajv = new Ajv({ allErrors: true, strict: true });
formats.default(ajv);
const validate = ajv.compile(KCIDB_V5_3_SCHEMA);
const errorsOf = (r: unknown): string => (validate(r) ? '' : ajv.errorsText(validate.errors));

const bothFamilies = async (opts: { sources?: [string, string]; now?: Date } = {}): Promise<Matrix> => {
  const [a, b] = opts.sources ?? ['zen4.json', 'k10.json'];
  return buildMatrix([{ source: a, results: loadFixture('zen4') }, { source: b, results: loadFixture('k10') }], { deviations: await loadRegistry(), ...(opts.now ? { now: opts.now } : {}) });
};
const testsOf = (reports: readonly KcidbReport[]): KcidbTest[] => reports.flatMap((r) => r.tests ?? []);

/** Every cell kind of the matrix, a column without a result for a case counted as `missing`. */
function cellKinds(m: Matrix): Record<CellKind, number> {
  const n: Record<CellKind, number> = { reference: 0, agree: 0, informational: 0, known: 0, diverge: 0, single: 0, notrun: 0, problem: 0, missing: 0 };
  for (const f of m.families) for (const col of f.columns) for (const c of f.cases) n[c.cells[col.key]?.kind ?? 'missing']++;
  return n;
}

describe(`svmconf publish --kcidb: ${KCIDB_SCHEMA_NAME}`, () => {
  it('gives reports that validate against the schema, with the version they claim', async () => {
    assert.equal(KCIDB_SCHEMA_NAME, 'KCIDB I/O schema v5.3');
    const m = await bothFamilies();
    const reports = renderKcidb(m, await loadRegistry());
    assert.ok(reports.length >= 2);
    for (const r of reports) {
      assert.equal(errorsOf(r), '');
      assert.deepEqual(r.version, { major: 5, minor: 3 });
    }
    assert.equal(reports[0]!.checkouts!.length, 2, 'one checkout per run');
    assert.equal(reports.slice(1).filter((r) => r.builds?.length === 1 && r.tests?.length).length, reports.length - 1, 'then one report per build with its tests');
  });

  it('is refused by the validator when broken', async () => {
    const reports = renderKcidb(await bothFamilies(), await loadRegistry());
    const good = reports[1]!;
    assert.equal(errorsOf(good), '', 'the report before it is spoilt');
    const broken: Array<[string, (r: KcidbReport & Record<string, unknown>) => void, RegExp]> = [
      ['a status KCIDB does not have', (r) => { (r.tests![0] as { status: string }).status = 'OK'; }, /status must be equal to one of the allowed values/],
      ['a field the test object does not have', (r) => { Object.assign(r.tests![0]!, { verdict: 'agree' }); }, /must NOT have additional properties/],
      ['an id without its origin', (r) => { r.tests![0]!.id = 'run-1/model/x'; }, /id must match pattern/],
      ['a path node with `=`', (r) => { r.tests![0]!.path = 'svmconf.l1.faults.kind=ud2'; }, /path must match pattern/],
      ['a time that is not RFC 3339', (r) => { r.builds![0]!.start_time = 'yesterday'; }, /start_time must match format "date-time"/],
      ['another major version', (r) => { r.version = { major: 4, minor: 3 }; }, /major must be equal to constant/],
      ['a newer minor version', (r) => { r.version = { major: 5, minor: 4 }; }, /minor must be <= 3/],
      ['a test without its build', (r) => { delete (r.tests![0] as Partial<KcidbTest>).build_id; }, /must have required property 'build_id'/],
      ['a top-level list the schema does not have', (r) => { r.cases = []; }, /must NOT have additional properties/],
    ];
    for (const [what, spoil, message] of broken) {
      const r = structuredClone(good) as KcidbReport & Record<string, unknown>;
      spoil(r);
      assert.match(errorsOf(r), message, what);
    }
  });

  it('has one test per case and column, its status from the cell kind, counted as the matrix counts them', async () => {
    // every kind at least once: a divergence, a crash, an unsupported case, a missing result, a single OK
    const r = tweak(loadFixture('zen4'), UD2, 'qemu-tcg');
    const [crash, unsupported, missing, single] = ['l1.faults/kind=pf_read,prefix=none', 'l1.faults/kind=pf_read,prefix=ds', 'l1.faults/kind=pf_write,prefix=none', 'l1.faults/kind=pf_write,prefix=ds']
      .map((id) => r.cases.find((c) => c.id === id)!);
    crash!.results['qemu-tcg'] = { status: 'CRASH', reason: 'triple fault' };
    unsupported!.results['qemu-tcg'] = { status: 'UNSUPPORTED', reason: 'no NRIPS' };
    delete missing!.results['qemu-tcg'];
    single!.results['model'] = { status: 'SKIP', reason: 'no such CPU' };
    const m = buildMatrix([{ source: 'x.json', results: r }], { deviations: await loadRegistry() });
    const tests = testsOf(renderKcidb(m, await loadRegistry()));
    const kinds = cellKinds(m);
    for (const k of ['diverge', 'known', 'problem', 'notrun', 'missing', 'single', 'reference', 'agree'] as const) assert.ok(kinds[k] > 0, `the fixture has a ${k} cell`);
    const count = (s: string) => tests.filter((t) => t.status === s).length;
    assert.equal(tests.length, m.families.reduce((n, f) => n + f.columns.length * f.cases.length, 0));
    assert.equal(count('PASS'), kinds.reference + kinds.agree + kinds.informational);
    assert.equal(count('FAIL'), kinds.diverge + kinds.known);
    assert.equal(count('ERROR'), kinds.problem);
    assert.equal(count('MISS'), kinds.missing);
    assert.equal(count('SKIP'), kinds.notrun);
    assert.equal(count('DONE'), kinds.single);
    const f = m.families[0]!;
    for (const t of tests) {
      const misc = t.misc as { case: string; column: string; cell: CellKind };
      assert.equal(misc.cell, f.cases.find((c) => c.id === misc.case)!.cells[misc.column]?.kind ?? 'missing', t.id);
    }
    const tcg = f.columns.find((c) => c.backend === 'qemu-tcg')!.key;
    const of = (id: string) => tests.find((t) => (t.misc as { case: string }).case === id && (t.misc as { column: string }).column === tcg)!;
    assert.equal(of(UD2).status, 'FAIL');
    assert.match(of(UD2).log_excerpt ?? '', /vector/, 'the decoded difference');
    assert.equal(of(ICEBP).status, 'FAIL', 'a known deviation is the peer\'s wrong value');
    assert.deepEqual((of(ICEBP).misc as { known_deviations: string[] }).known_deviations, ['qemu-icebp-ud']);
    assert.ok((of(ICEBP).misc as { findings?: string[] }).findings?.length, 'with the finding of its entry');
    assert.equal(of(crash!.id).log_excerpt, 'CRASH: triple fault');
    assert.equal(of(unsupported!.id).status, 'SKIP');
    assert.equal(of(unsupported!.id).log_excerpt, 'UNSUPPORTED: no NRIPS');
    assert.equal(of(missing!.id).status, 'MISS');
    assert.equal(of(single!.id).status, 'DONE', 'the only OK record: nothing to compare it with');
    assert.equal(of(UD2).path, 'svmconf.l1.faults.kind-ud2.prefix-none');
    assert.equal(errorsOf({ version: { major: 5, minor: 3 }, tests }), '');
  });

  it('gives unique ids whose references resolve, the same again for the same results', async () => {
    const registry = await loadRegistry();
    const first = renderKcidb(await bothFamilies(), registry);
    const checkouts = first.flatMap((r) => r.checkouts ?? []);
    const builds = first.flatMap((r) => r.builds ?? []);
    const tests = testsOf(first);
    for (const list of [checkouts, builds, tests]) assert.equal(new Set(list.map((o) => o.id)).size, list.length);
    assert.equal(builds.length, 4, 'two columns in each of two runs');
    for (const b of builds) assert.ok(checkouts.some((c) => c.id === b.checkout_id), b.id);
    for (const t of tests) assert.ok(builds.some((b) => b.id === t.build_id), t.id);
    for (const o of [...checkouts, ...builds, ...tests]) assert.ok(o.id.startsWith('svmconf:') && o.origin === 'svmconf');
    // other paths given for the same files, exported at another time
    const again = renderKcidb(await bothFamilies({ sources: ['a/zen4.results.json', 'b/k10.results.json'], now: new Date(0) }), registry);
    const ids = (rs: KcidbReport[]) => rs.flatMap((r) => [...(r.checkouts ?? []), ...(r.builds ?? []), ...(r.tests ?? [])]).map((o) => o.id);
    assert.deepEqual(ids(again), ids(first));
    assert.deepEqual(testsOf(again).map((t) => [t.path, t.status]), tests.map((t) => [t.path, t.status]));
  });

  it('refuses two cases that would meet on one test path', async () => {
    const m = await bothFamilies();
    const f = m.families[0]!;
    const c = f.cases.find((x) => x.id === UD2)!;
    // `prefix-none` where the case says `prefix=none`: both are the path node prefix-none
    f.cases.push({ ...c, id: UD2.replace('prefix=none', 'prefix-none') });
    assert.throws(() => renderKcidb(m), (e: unknown) => e instanceof KcidbError && /would both be the KCIDB path/.test(e.message));
  });

  it('is written by `svmconf publish --kcidb <file>` atomically, beside the matrix files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'svmconf-kcidb-'));
    try {
      const file = join(dir, 'kcidb', 'report.json');
      const svmconf = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), 'publish', join(FIXTURES, 'zen4.results.json'), join(FIXTURES, 'k10.results.json'), '--out', join(dir, 'pub'), ...args], { encoding: 'utf8', cwd: ROOT });
      const r = svmconf(['--kcidb', file]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /wrote .*kcidb\/report\.json/);
      assert.deepEqual(readdirSync(join(dir, 'kcidb')), ['report.json'], 'no temporary file left');
      const text = readFileSync(file, 'utf8');
      const reports = text.trimEnd().split('\n').map((l) => JSON.parse(l) as KcidbReport);
      for (const rep of reports) assert.equal(errorsOf(rep), '');
      assert.equal(testsOf(reports).length, 2 * 2 * 13, 'two families, two columns each, 13 cases');
      assert.equal(text, serializeKcidb(reports), 'one report a line');
      const bad = svmconf(['--kcidb', join(dir, 'pub', 'matrix.md', 'kcidb.json')]);
      assert.equal(bad.status, 3, 'a place that cannot be written is a usage error');
      assert.match(bad.stderr, /--kcidb .*matrix\.md/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
