// `svmconf publish` and `svmconf record` (report/publish.ts, report/publish-render.ts,
// report/hwrecords.ts), on the fixtures of test/support/publish-fixtures.ts.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Results } from '../core/types.ts';
import { loadDeviations } from '../report/deviations.ts';
import { readHwFamily, recordHardware, RecordError, HW_PROVENANCE_FILE } from '../report/hwrecords.ts';
import { buildMatrix, publishExitCode, type Matrix } from '../report/publish.ts';
import { renderJunit, renderPublishMarkdown, renderRecordedSection, writePublished } from '../report/publish-render.ts';
import { parseResults, readResults, ResultsFormatError } from '../report/results.ts';
import { identify } from '../model/profiles/identity.ts';
import { withCpus } from '../suite/publish.ts';
import { FIXTURES, loadFixture, tweak } from './support/publish-fixtures.ts';

const ROOT = resolve(import.meta.dirname, '..');
const registry = () => loadDeviations(join(ROOT, 'expected', 'deviations.yaml'));

const UD2 = 'l1.faults/kind=ud2,prefix=none';

describe('svmconf publish: one matrix per CPU family', () => {
  it('gives two family sections for two results files of different families', async () => {
    const m = buildMatrix([{ source: 'zen4.json', results: loadFixture('zen4') }, { source: 'k10.json', results: loadFixture('k10') }], { deviations: await registry() });
    assert.deepEqual(m.families.map((f) => f.slug), ['10h-k10', '19h-zen-4']);
    assert.deepEqual(m.families.map((f) => f.profile), ['amd-10h', 'amd-19h']);
    for (const f of m.families) {
      assert.equal(f.cases.length, 13);
      assert.deepEqual(f.columns.map((c) => c.kind), ['model', 'emulator']);
      assert.equal(f.summary.verdicts.known, 4, 'ICEBP and the IDT-gate error code are known QEMU deviations');
      assert.equal(f.summary.verdicts.diverge, 0);
    }
    const md = renderPublishMarkdown(m);
    assert.equal(md.match(/^## (K10|Zen 4) \(family/gm)?.length, 2);
    const junit = renderJunit(m);
    assert.equal(junit.match(/<testsuite /g)?.length, 4, 'one testsuite per family × column');
    assert.match(junit, /<testsuite name="19h-zen-4 \/ model \(amd-19h\)" tests="13" failures="0"/);
    assert.equal(publishExitCode(m), 0);
  });

  it('keeps a divergence a failure and a known deviation a pass with its entry named', async () => {
    const deviations = await registry();
    const m = buildMatrix([{ source: 'zen4.json', results: tweak(loadFixture('zen4'), UD2, 'qemu-tcg') }], { deviations });
    const f = m.families[0]!;
    const ud2 = f.cases.find((c) => c.id === UD2)!;
    assert.equal(ud2.verdict, 'diverge');
    const diff = ud2.comparisons[0]!.diffs[0]!;
    assert.equal(diff.field, 'vector');
    assert.equal(diff.values[0]!.text, '#UD (6)', 'decoded by the field\'s hint');
    assert.match(diff.values[1]!.text, /^#\w+ \(7\)$/, 'vector 6 with bit 0 flipped is 7, decoded');
    const icebp = f.cases.find((c) => c.id === 'l1.icebp/prefix=none')!;
    assert.equal(icebp.verdict, 'known');
    const tcgKey = f.columns.find((c) => c.backend === 'qemu-tcg')!.key;
    assert.deepEqual(icebp.cells[tcgKey]!.deviations, ['qemu-icebp-ud']);
    const junit = renderJunit(m);
    const tcgSuite = junit.slice(junit.indexOf(`<testsuite name="19h-zen-4 / ${tcgKey}"`));
    assert.match(tcgSuite, /tests="13" failures="1" errors="0" skipped="0"/);
    assert.match(tcgSuite, new RegExp(`<testcase name="${UD2.replace(/[.=/]/g, '\\$&')}"[^>]*><failure [^>]*type="divergence">[^<]*vector`));
    assert.match(tcgSuite, /<testcase name="l1\.icebp\/prefix=none"[^>]*><properties><property name="known-deviation" value="qemu-icebp-ud"\/><\/properties><system-out>known deviation qemu-icebp-ud/);
    const md = renderPublishMarkdown(m, deviations);
    const failures = md.slice(md.indexOf('### Failures'), md.indexOf('### Problems'));
    const known = md.slice(md.indexOf('### Known deviations'));
    assert.match(failures, /l1\.faults\/kind=ud2,prefix=none/);
    assert.doesNotMatch(failures, /icebp/);
    assert.doesNotMatch(known.split('## Legend')[0]!, /kind=ud2/);
    assert.equal(publishExitCode(m), 1);
  });

  it('reports CRASH/TIMEOUT/ERROR as JUnit errors and SKIP/UNSUPPORTED as skipped', () => {
    const r = structuredClone(loadFixture('zen4'));
    r.cases[0]!.results['qemu-tcg'] = { status: 'CRASH', reason: 'triple fault' };
    r.cases[1]!.results['qemu-tcg'] = { status: 'UNSUPPORTED', reason: 'no NRIPS' };
    const m = buildMatrix([{ source: 'x.json', results: r }]);
    const junit = renderJunit(m);
    assert.match(junit, /<error message="CRASH: triple fault" type="CRASH"\/>/);
    assert.match(junit, /<skipped message="UNSUPPORTED: no NRIPS"\/>/);
    assert.equal(m.families[0]!.summary.problems, 1);
    assert.equal(publishExitCode(m), 2);
  });

  it('merges runs of one family: the newest wins per case, an older different result is flagged unstable', () => {
    const older = structuredClone(loadFixture('zen4'));
    older.generated = '2026-01-01T00:00:00.000Z';
    const newer = tweak(loadFixture('zen4'), UD2, 'qemu-tcg');
    newer.generated = '2026-06-01T00:00:00.000Z';
    const m = buildMatrix([{ source: 'old.json', results: older }, { source: 'new.json', results: newer }]);
    assert.equal(m.families.length, 1);
    const f = m.families[0]!;
    assert.equal(f.columns.length, 2, 'same machine and backends: the same columns');
    assert.deepEqual(f.columns[1]!.sources, ['new.json', 'old.json']);
    const cell = f.cases.find((c) => c.id === UD2)!.cells[f.columns[1]!.key]!;
    assert.equal(cell.source, 'new.json');
    assert.equal(cell.kind, 'diverge');
    assert.equal(cell.unstable?.[0]?.source, 'old.json');
    assert.equal(f.summary.unstable, 1);
    assert.equal(f.cases.find((c) => c.id === UD2)!.verdict, 'diverge', 'worst verdict over the runs');
    // another machine: its own columns
    const other = structuredClone(loadFixture('zen4'));
    other.host = { ...other.host, modelName: 'AMD Ryzen 9 7950X', kernel: '6.12.0' };
    const m2 = buildMatrix([{ source: 'a.json', results: loadFixture('zen4') }, { source: 'b.json', results: other }]);
    assert.deepEqual(m2.families[0]!.columns.map((c) => c.kind), ['model', 'emulator', 'emulator']);
  });

  it('files results from before family detection by the model\'s profile', () => {
    const r = structuredClone(loadFixture('k10'));
    for (const b of r.backends) delete b.cpu;
    const m = buildMatrix([{ source: 'old.json', results: withCpus(r) }]);
    assert.equal(m.families[0]!.slug, '10h-k10');
  });

  it('names the file when results are missing, malformed or of another version', async () => {
    await assert.rejects(readResults(join(FIXTURES, 'nope.json')), /nope\.json/);
    assert.throws(() => parseResults('{', 'broken.json'), (e: Error) => e instanceof ResultsFormatError && /broken\.json: not JSON/.test(e.message));
    assert.throws(() => parseResults('{"schema":"svmconf-results/2"}', 'v2.json'), /v2\.json: \$\.schema: "svmconf-results\/2" is a different version/);
    const r = structuredClone(loadFixture('zen4')) as unknown as { backends: Array<{ cpu: unknown }> };
    r.backends[0]!.cpu = { vendor: 'AuthenticAMD' };
    assert.throws(() => parseResults(JSON.stringify(r), 'cpu.json'), /cpu\.json: \$\.backends\[0\]\.cpu\.source/);
  });

  it('reads results from before BackendInfo.kind by the legacy rule, and checks kind and torture when present', () => {
    assert.deepEqual(loadFixture('zen4').backends.map((b) => b.kind), ['model', 'emulator'], 'the fixtures predate kind');
    const r = JSON.parse(readFileSync(join(FIXTURES, 'zen4.results.json'), 'utf8')) as { backends: Array<Record<string, unknown>>; cases: Array<{ results: Record<string, Record<string, unknown>> }> };
    const old = r.backends[0]!;
    // every backend listed has a result for every case (a copy of the first backend's)
    const listing = (names: string[]) => ({
      ...r,
      backends: names.map((name): Record<string, unknown> => ({ ...old, name })),
      cases: r.cases.map((c) => ({ ...c, results: Object.fromEntries(names.map((n) => [n, Object.values(c.results)[0]!])) })),
    });
    assert.deepEqual(parseResults(JSON.stringify(listing(['model', 'model-l0', 'model@amd-10h', 'qemu-tcg', 'bochs-ryzen', 'kvm-tcg', 'kvm', 'qemu-kvm', 'console'])), 'old.json').backends.map((b) => b.kind),
      ['model', 'model', 'model', 'emulator', 'emulator', 'emulator', 'hardware', 'hardware', 'hardware']);
    // a kind written is taken as written, whatever the name
    const one = listing(['model']);
    one.backends = [{ ...old, name: 'model', kind: 'hardware' }];
    assert.equal(parseResults(JSON.stringify(one), 'new.json').backends[0]!.kind, 'hardware');
    one.backends = [{ ...old, kind: 'cpu' }];
    assert.throws(() => parseResults(JSON.stringify(one), 'bad.json'), /bad\.json: \$\.backends\[0\]\.kind: expected one of model, emulator, hardware/);
    r.backends = [old, ...r.backends.slice(1)];
    r.cases[0]!.results.model!.torture = { restores: 3, atExits: 2, atTimer: 1, every: 1, control: false, inL2: false, msrsLeftOut: [] };
    assert.doesNotThrow(() => parseResults(JSON.stringify(r), 'torture.json'));
    r.cases[0]!.results.model!.torture = { restores: '3' };
    assert.throws(() => parseResults(JSON.stringify(r), 'torture.json'), /torture\.json: \$\.cases\[0\]\.results\.model\.torture\.restores/);
  });

  it('writes the four files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svmconf-publish-'));
    try {
      const m = buildMatrix([{ source: 'zen4.json', results: loadFixture('zen4') }, { source: 'k10.json', results: loadFixture('k10') }]);
      await writePublished(dir, m);
      assert.deepEqual(readdirSync(dir).sort(), ['junit.xml', 'matrix.html', 'matrix.json', 'matrix.md']);
      const json = JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')) as Matrix;
      assert.equal(json.schema, 'svmconf-matrix/1');
      assert.equal(json.families.length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('svmconf record: hardware truth with provenance', () => {
  /** The zen4 fixture as if its second backend had been kvm on a Zen 4 host. */
  function hwRun(): Results {
    const r = structuredClone(loadFixture('zen4'));
    const cpu = identify({ vendor: 'AuthenticAMD', family: 0x19, model: 0x11, stepping: 1 }, 'host /proc/cpuinfo', { modelName: 'AMD EPYC 9654 96-Core Processor', microcode: '0xa101148' });
    r.backends[1] = { ...r.backends[1]!, name: 'kvm', kind: 'hardware', version: 'QEMU 7.2.22', cpu };
    r.host = { ...r.host, modelName: 'AMD EPYC 9654 96-Core Processor', family: 0x19, model: 0x11, microcode: '0xa101148' };
    for (const c of r.cases) {
      c.results.kvm = c.results['qemu-tcg']!;
      delete c.results['qemu-tcg'];
    }
    // real hardware raises #DB for ICEBP: give it the model's record there
    const icebp = r.cases.find((c) => c.id === 'l1.icebp/prefix=none')!;
    icebp.results.kvm = { ...icebp.results.model!, mask: undefined } as never;
    delete (icebp.results.kvm as { mask?: string }).mask;
    return r;
  }

  it('refuses an emulator or the model unless forced, and says so in the provenance', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svmconf-hw-'));
    try {
      await assert.rejects(recordHardware(loadFixture('zen4'), { source: 'zen4.json', dir, command: 'svmconf record zen4.json' }), (e: Error) => e instanceof RecordError && /no hardware backend/.test(e.message));
      await assert.rejects(recordHardware(loadFixture('zen4'), { source: 'zen4.json', backend: 'qemu-tcg', dir, command: 'x' }), /qemu-tcg is an emulator, not hardware/);
      await assert.rejects(recordHardware(loadFixture('zen4'), { source: 'zen4.json', backend: 'model', dir, command: 'x' }), /model is the model, not hardware/);
      await assert.rejects(recordHardware(loadFixture('zen4'), { source: 'zen4.json', backend: 'bochs', dir, command: 'x' }), /no backend bochs in this run/);
      const forced = await recordHardware(loadFixture('zen4'), { source: 'zen4.json', backend: 'qemu-tcg', force: true, dir, command: 'svmconf record --force' });
      assert.equal(forced.forced, true);
      const prov = JSON.parse(readFileSync(join(forced.dir, HW_PROVENANCE_FILE), 'utf8'));
      assert.equal(prov.forced, true);
      assert.equal(prov.family.slug, '0fh-k8-rev-f-g', 'qemu64 is filed as what it emulates');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stores per-case records with provenance, and the matrix shows model vs recorded hardware', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svmconf-hw-'));
    try {
      const out = await recordHardware(hwRun(), { source: 'hw.json', dir, command: 'svmconf record hw.json', now: new Date('2026-11-25T00:00:00Z') });
      assert.equal(out.backend, 'kvm');
      assert.equal(out.dir, join(dir, '19h-zen-4', 'amd-epyc-9654-96-core-processor-19h-11h-s1'));
      assert.deepEqual(readdirSync(out.dir).sort(), ['PROVENANCE.json', 'l1.faults.json', 'l1.icebp.json']);
      const prov = JSON.parse(readFileSync(join(out.dir, HW_PROVENANCE_FILE), 'utf8'));
      assert.deepEqual(prov.cpu, { vendor: 'AuthenticAMD', family: 25, model: 17, stepping: 1, name: 'AMD EPYC 9654 96-Core Processor', microcode: '0xa101148', source: 'host /proc/cpuinfo' });
      assert.equal(prov.backend.name, 'kvm');
      assert.equal(prov.command, 'svmconf record hw.json');
      assert.equal(prov.forced, false);
      assert.match(prov.svmconfCommit, /^([0-9a-f]{40}|unknown)$/);
      assert.equal(prov.cases, 13);

      const recorded = new Map([['19h-zen-4', await readHwFamily('19h-zen-4', dir)]]);
      assert.equal(recorded.get('19h-zen-4')!.length, 1);
      const deviations = await registry();
      const m = buildMatrix([{ source: 'zen4.json', results: loadFixture('zen4') }], { deviations, recorded });
      const f = m.families[0]!;
      const col = f.columns.find((c) => c.kind === 'recorded')!;
      assert.equal(col.key, 'recorded kvm @ amd-epyc-9654-96-core-processor-19h-11h-s1');
      assert.equal(col.cpu?.modelName, 'AMD EPYC 9654 96-Core Processor');
      // the recorded ICEBP equals the model; the recorded IDT-gate error code (QEMU's) is a divergence for kvm
      assert.equal(f.cases.find((c) => c.id === 'l1.icebp/prefix=none')!.cells[col.key]!.kind, 'agree');
      const gp = f.cases.find((c) => c.id === 'l1.faults/kind=gp_idt_limit,prefix=none')!;
      assert.equal(gp.cells[col.key]!.kind, 'diverge');
      assert.equal(gp.verdict, 'diverge');
      assert.ok(gp.comparisons.some((c) => c.origin.startsWith('recorded ') && c.diffs.some((d) => d.field === 'error_code')));
      // what `svmconf run` adds to its matrix.md for the run's family
      const section = renderRecordedSection(f).join('\n');
      assert.match(section, /^## Recorded hardware: Zen 4 \(expected\/hw\/19h-zen-4\/\)/);
      assert.match(section, /`l1\.faults\/kind=gp_idt_limit,prefix=none` error_code: model \(amd-19h\) 0x\w+; recorded kvm/);
      assert.doesNotMatch(section, /icebp\/prefix=none/, 'cases equal to the model are not listed');
      assert.match(section, /icebp\/prefix=ds/, 'the one left with QEMU\'s record is');
      // another family has no recording
      assert.deepEqual(await readHwFamily('10h-k10', dir), []);
      // a broken recording names its file
      writeFileSync(join(out.dir, 'l1.icebp.json'), '{"schema":"svmconf-hw/1"');
      await assert.rejects(readHwFamily('19h-zen-4', dir), /l1\.icebp\.json: not JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
