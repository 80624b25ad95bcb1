// End to end on qemu-tcg: templates → kernels → QEMU → protocol → results.
// Expectations come from the manual (INT3 is a trap: the pushed RIP follows it, APM vol. 2 8.2)
// and from the runtime's own contract (docs/protocol.md), never from a stored run.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { qemuTcgBackend } from '../runner/backends/qemu.ts';
import { runKernels } from '../runner/schedule.ts';
import { decodeRecord } from '../report/decode.ts';
import type { Case } from '../core/types.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'templates');

describe('end to end on qemu-tcg', function () {
  this.timeout(180_000);
  let cases: Case[];
  let results: Map<string, Record<string, { status: string; record?: string; reason?: string }>>;

  before(async function () {
    const backend = qemuTcgBackend();
    const info = await backend.probe();
    if (!info.available) throw new Error(`qemu-tcg must be available for this spec (make setup): ${info.reason}`);
    const all = expandAll(await loadTemplates([FIXTURES]));
    cases = filterCases(all, ['fixture.crashers/*', 'l1.int3/*', 'svm.vmmcall/*']);
    const kernels = await buildKernels(cases, { extraDirs: [FIXTURES] });
    results = await runKernels(kernels, [{ backend, info }], { jobs: 2, idleTimeoutMs: 4000 });
  });

  const result = (id: string) => {
    const r = results.get(id)?.['qemu-tcg'];
    assert.ok(r, `no result for ${id}`);
    return r;
  };

  it('gives every case exactly one result', () => {
    for (const c of cases) result(c.id);
    assert.equal([...results.keys()].filter((k) => !cases.some((c) => c.id === k)).length, 0);
  });

  it('runs an INT3 case to a record the manual predicts', () => {
    const c = cases.find((x) => x.id === 'l1.int3/enc=cc,prefix=ds')!;
    const r = result(c.id);
    assert.equal(r.status, 'OK', r.reason);
    const rec = decodeRecord(r.record!, c.template.record);
    const get = (n: string) => rec.fields.find((f) => f.field.name === n)!.value;
    assert.deepEqual(rec.problems, []);
    assert.equal(get('vector'), 3n); // #BP
    assert.equal(get('frame_rip'), 0n); // trap: RIP after the prefixed INT3
    assert.equal(get('hits'), 1n);
  });

  it('turns an unexpected exception into CRASH with the vector and goes on with the batch', () => {
    const r = result('fixture.crashers/what=fault');
    assert.equal(r.status, 'CRASH');
    assert.equal(r.record?.slice(0, 16), '0600000000000000'); // #UD in the crash record's vector field
    assert.equal(result('fixture.crashers/what=ok').status, 'OK');
  });

  it('attributes a triple fault to its case and resumes after it', () => {
    const r = result('fixture.crashers/what=triple');
    assert.equal(r.status, 'CRASH');
    assert.match(r.reason ?? '', /triple fault|reset|shutdown/i);
    assert.equal(result('fixture.crashers/what=ok2').status, 'OK');
  });

  it('attributes a hang to its case as TIMEOUT and resumes after it', () => {
    assert.equal(result('fixture.crashers/what=hang').status, 'TIMEOUT');
    const r = result('fixture.crashers/what=ok3');
    assert.equal(r.status, 'OK');
    // marker 0x5356, then RSP mod 16 = 8 at entry (16-byte aligned before the call)
    assert.equal(r.record, '5653000000000000' + '08');
  });

  it('marks NRIPS cases UNSUPPORTED on QEMU TCG, which has no NRIPS, and runs the others', () => {
    assert.equal(result('svm.vmmcall/nrips=on').status, 'UNSUPPORTED');
    assert.match(result('svm.vmmcall/nrips=on').reason ?? '', /nrips/i);
    assert.equal(result('svm.vmmcall/nrips=off').status, 'OK');
  });
});
