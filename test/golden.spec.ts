// Golden records (expected/<profile>/): the model's output for every case under every profile must
// equal the checked-in files. A failure prints the drift field by field and says to run
// `make expected` and review the diff. Plus the comparison machinery itself, on made-up drift.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernels, expandAll, loadTemplates, ROOT } from '../generator/index.ts';
import { PROFILES, type Profile } from '../model/profile.ts';
import {
  checkProvenance, diffGolden, EXPECTED_DIR, formatDrift, profileFingerprint, readGoldenDir, readProvenance,
  stableJson, writeGolden, type GoldenFile, type Provenance,
} from '../report/golden.ts';
import { runGolden } from '../suite/golden.ts';
import type { Kernel, RecordField } from '../core/types.ts';

describe('golden records: the model against expected/<profile>/', function () {
  this.timeout(300_000);
  let kernels: Kernel[];
  let layouts: Map<string, RecordField[]>;
  const runs = new Map<string, Map<string, GoldenFile>>();

  before(async () => {
    const cases = expandAll(await loadTemplates());
    kernels = await buildKernels(cases); // once, for every profile
    layouts = new Map(cases.map((c) => [c.template.id, c.template.record] as const));
  });

  for (const profile of PROFILES) {
    it(`${profile.name}: every case's record equals expected/${profile.name}/ (else run make expected and review)`, async () => {
      const model = await runGolden(kernels, profile);
      runs.set(profile.name, model);
      const dir = join(EXPECTED_DIR, profile.name);
      const drift = [
        ...diffGolden(profile.name, await readGoldenDir(dir), model, layouts),
        ...checkProvenance(profile, await readProvenance(dir)),
      ];
      assert.equal(drift.length, 0, `\n${formatDrift(drift)}`);
      // every case of the suite is there, the unsupported ones with their reason
      const entries = [...model.values()].flatMap((f) => f.cases);
      assert.equal(entries.length, kernels.reduce((n, k) => n + k.cases.length, 0));
      for (const e of entries) if (e.status === 'UNSUPPORTED') assert.ok(e.reason, `${e.id} UNSUPPORTED with a reason`);
    });
  }

  it('expected/ holds golden directories only for known profiles', async () => {
    const known = new Set(PROFILES.map((p) => p.name));
    for (const e of await readdir(EXPECTED_DIR, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const prov = await readProvenance(join(EXPECTED_DIR, e.name));
      if (prov) assert.ok(known.has(e.name), `expected/${e.name} is golden records of a profile that no longer exists`);
    }
  });

  it('the checked-in files are in the stable format (sorted keys, 2-space indent, newline at the end)', async () => {
    for (const p of PROFILES) {
      const dir = join(EXPECTED_DIR, p.name);
      for (const name of await readdir(dir)) {
        const text = await readFile(join(dir, name), 'utf8');
        assert.equal(text, stableJson(JSON.parse(text)), `expected/${p.name}/${name}`);
      }
    }
  });

  it('the model never reads expected/ (the model computes; expected/ is only compared against)', async () => {
    const walk = async (d: string): Promise<string[]> => {
      const out: string[] = [];
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) out.push(...(await walk(p)));
        else if (e.name.endsWith('.ts')) out.push(p);
      }
      return out;
    };
    for (const f of await walk(join(ROOT, 'model'))) {
      const text = await readFile(f, 'utf8');
      assert.doesNotMatch(text, /['"`/]expected['"`/]|report\/golden|EXPECTED_DIR/, `${f} refers to expected/`);
    }
  });
});

describe('golden records: drift detection and formatting', () => {
  const layout: RecordField[] = [
    { name: 'vector', type: 'u64', offset: 0, size: 8, decode: 'vector', doc: '' },
    { name: 'frame_rip', type: 'u64', offset: 8, size: 8, decode: 'offset', doc: '' },
  ];
  const layouts = new Map([['t.x', layout]]);
  const rec = (vec: number, rip: number) => Buffer.concat([Buffer.from(new BigUint64Array([BigInt(vec)]).buffer), Buffer.from(new BigUint64Array([BigInt(rip)]).buffer)]).toString('hex');
  const file = (cases: GoldenFile['cases']): Map<string, GoldenFile> => new Map([['t.x', { schema: 'svmconf-golden/1', profile: 'amd-19h', template: 't.x', cases }]]);

  it('no drift for equal files', () => {
    const a = file([{ id: 't.x/a', status: 'OK', record: rec(3, 2) }]);
    assert.deepEqual(diffGolden('amd-19h', a, a, layouts), []);
  });

  it('a changed record is shown field by field with decoded values, only the fields that differ', () => {
    const golden = file([{ id: 't.x/a', status: 'OK', record: rec(3, 2) }]);
    const model = file([{ id: 't.x/a', status: 'OK', record: rec(13, 2) }]);
    const drift = diffGolden('amd-19h', golden, model, layouts);
    assert.equal(drift.length, 1);
    assert.equal(drift[0]!.caseId, 't.x/a');
    assert.deepEqual(drift[0]!.lines, ['vector: golden #BP (3) [0x3], model #GP (13) [0xd]']);
    const text = formatDrift(drift);
    assert.match(text, /amd-19h {2}t\.x\/a {2}\[expected\/amd-19h\/t\.x\.json\]/);
    assert.match(text, /make expected/);
    assert.match(text, /git diff expected\//);
  });

  it('status, reason, new, vanished and reordered cases, and new or stale templates are drift', () => {
    const golden = file([
      { id: 't.x/a', status: 'OK', record: rec(3, 2) },
      { id: 't.x/b', status: 'UNSUPPORTED', reason: 'needs svm present: x' },
      { id: 't.x/gone', status: 'OK', record: rec(3, 2) },
    ]);
    const model = file([
      { id: 't.x/b', status: 'UNSUPPORTED', reason: 'needs svm present: y' },
      { id: 't.x/a', status: 'CRASH', record: '00' },
      { id: 't.x/new', status: 'OK', record: rec(1, 1) },
    ]);
    const lines = diffGolden('amd-19h', golden, model, layouts).map((d) => `${d.caseId ?? ''}: ${d.lines.join(' | ')}`);
    assert.ok(lines.some((l) => l.startsWith('t.x/a: status: golden OK, model CRASH')), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith('t.x/b: reason: golden "needs svm present: x", model "needs svm present: y"')), lines.join('\n'));
    assert.ok(lines.includes('t.x/new: new case (model: OK)'), lines.join('\n'));
    assert.ok(lines.includes('t.x/gone: case no longer exists'), lines.join('\n'));
    assert.ok(lines.includes(': cases are in a different order'), lines.join('\n'));
    const extra = new Map([...model, ['t.y', { schema: 'svmconf-golden/1' as const, profile: 'amd-19h', template: 't.y', cases: [] }]]);
    assert.match(diffGolden('amd-19h', golden, extra, layouts).map((d) => d.lines.join()).join('\n'), /no golden file: template t\.y is new/);
    assert.match(diffGolden('amd-19h', extra, model, layouts).map((d) => d.lines.join()).join('\n'), /stale golden file/);
  });

  it('provenance: the date and model hash are not drift, a changed profile CPUID is', () => {
    const p = PROFILES[0]!;
    const prov: Provenance = {
      schema: 'svmconf-golden-provenance/1', profile: p.name, profileTitle: '', profileFingerprint: profileFingerprint(p),
      model: { sourcesSha256: 'x', packageVersion: '0', gitCommit: 'y', modelDirty: false }, generated: '1999-01-01T00:00:00.000Z', command: 'c', cases: 0, statuses: {},
    };
    assert.deepEqual(checkProvenance(p, prov), []);
    assert.deepEqual(checkProvenance(p, { ...prov, generated: new Date().toISOString(), model: { ...prov.model, sourcesSha256: 'z' } }), []);
    const changed: Profile = { ...p, cpuid: { ...p.cpuid, '0x8000000a': { eax: 1, ebx: 0x40, ecx: 0, edx: 0xf } } };
    assert.match(checkProvenance(changed, prov)[0]!.lines.join(), /CPUID changed/);
    assert.match(checkProvenance(p, undefined)[0]!.lines.join(), /missing/);
  });

  it('writeGolden leaves unchanged files and the provenance date alone, rewrites on change, removes stale files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'svmconf-golden-'));
    try {
      const p = PROFILES[3]!;
      const a = file([{ id: 't.x/a', status: 'OK', record: rec(3, 2) }]);
      const first = await writeGolden(p, a, { root, now: new Date('2020-01-01T00:00:00Z') });
      assert.equal(first.changed.length, 1);
      assert.equal(first.provenanceWritten, true);
      const again = await writeGolden(p, a, { root, now: new Date('2030-01-01T00:00:00Z') });
      assert.deepEqual([again.changed, again.provenanceWritten], [[], false]);
      assert.equal((await readProvenance(join(root, p.name)))?.generated, '2020-01-01T00:00:00.000Z');
      const b = new Map([['t.z', { schema: 'svmconf-golden/1' as const, profile: p.name, template: 't.z', cases: [] }]]);
      const third = await writeGolden(p, b, { root, now: new Date('2030-01-01T00:00:00Z') });
      assert.equal(third.changed.length, 2); // t.z written, t.x removed
      assert.deepEqual((await readdir(join(root, p.name))).sort(), ['PROVENANCE.json', 't.z.json']);
      assert.equal((await readProvenance(join(root, p.name)))?.generated, '2030-01-01T00:00:00.000Z');
      assert.deepEqual([...(await readGoldenDir(join(root, p.name))).keys()], ['t.z']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
