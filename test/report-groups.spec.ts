// Reference groups (report/compare.ts): a backend whose BackendInfo names another reference is
// compared with that one only — a Bochs flavour with the model under its family's profile — and
// the verdicts of the groups combine. Also the profile view that keeps only the SVM features an
// emulator's CPU model reports (model/profile.ts withSvmEdx).

import assert from 'node:assert/strict';
import type { CaseOutcome, RecordField } from '../core/types.ts';
import { compareCase, compareResults, referenceFor } from '../report/compare.ts';
import { cellFor } from '../report/format.ts';
import { findProfile, svmSwitches, withSvmEdx } from '../model/profile.ts';

const L: RecordField[] = [{ name: 'v', type: 'u32', offset: 0, size: 4, decode: 'hex', doc: '' }];
const ok = (record: string) => ({ status: 'OK' as const, record });
const outcome = (results: CaseOutcome['results']): CaseOutcome => ({ id: 't/x=1', template: 't', params: { x: '1' }, results });
const groups = { 'model@p': 'model@p', bochs: 'model@p' };

describe('report/compare: reference groups', () => {
  it('compares a grouped backend with its own reference, not with `model`', () => {
    const o = outcome({ model: ok('01000000'), 'model@p': ok('02000000'), bochs: ok('02000000'), qemu: ok('01000000') });
    const plain = compareCase(o, L, { backends: ['model', 'model@p', 'qemu', 'bochs'] });
    assert.equal(plain.verdict, 'diverge', 'without groups the profiles differ');
    const c = compareCase(o, L, { backends: ['model', 'model@p', 'qemu', 'bochs'], referenceOf: groups });
    assert.equal(c.verdict, 'agree');
    assert.equal(c.reference, 'model');
    assert.equal(referenceFor(c, 'bochs'), 'model@p');
    assert.equal(referenceFor(c, 'qemu'), 'model');
    assert.deepEqual(c.agreeing, ['model', 'model@p', 'qemu', 'bochs']);
    assert.equal(cellFor(c, o.results['model@p'], 'model@p').kind, 'reference');
    assert.equal(cellFor(c, o.results.bochs, 'bochs').text, '=');
  });

  it('a divergence inside a group is the case verdict, its diff led by the group reference', () => {
    const o = outcome({ model: ok('01000000'), 'model@p': ok('02000000'), bochs: ok('03000000') });
    const c = compareCase(o, L, { backends: ['model', 'model@p', 'bochs'], referenceOf: groups });
    assert.equal(c.verdict, 'diverge');
    assert.deepEqual(c.diverging, ['bochs']);
    assert.equal(c.diffs.length, 1);
    assert.deepEqual(c.diffs[0]!.values.map((v) => v.backend), ['model@p', 'bochs']);
  });

  it('compareResults takes the groups from results.backends[].reference', () => {
    const info = (name: string, reference?: string) => ({
      name, kind: name.startsWith('model') ? 'model' as const : 'emulator' as const, available: true, reason: '', features: { svm: { present: true, absent: true, reason: '' }, npt: { present: true, absent: true, reason: '' }, nrips: { present: true, absent: true, reason: '' } },
      ...(reference ? { reference } : {}),
    });
    const results = {
      schema: 'svmconf-results/1' as const, generated: '', host: { vendor: '', family: 0, model: 0, stepping: 0, modelName: '', kernel: '' },
      backends: [info('model'), info('model@p', 'model@p'), info('bochs', 'model@p')],
      layouts: { t: L },
      cases: [outcome({ model: ok('01000000'), 'model@p': ok('02000000'), bochs: ok('02000000') })],
    };
    assert.equal(compareResults(results).cases[0]!.verdict, 'agree');
  });
});

describe('model/profile: withSvmEdx', () => {
  it('keeps only the SVM features shown, and the behaviour switches follow', () => {
    const p = findProfile('amd-17h')!;
    assert.equal(svmSwitches(p).decodeAssists, true);
    const bochs = withSvmEdx(p, 0x44f);
    assert.equal(svmSwitches(bochs).decodeAssists, false);
    assert.equal(svmSwitches(bochs).nrips, true);
    assert.equal(svmSwitches(bochs).nestedPaging, true);
    assert.notEqual(bochs.name, p.name);
    assert.equal(withSvmEdx(findProfile('amd-10h')!, 0x7), findProfile('amd-10h'), 'nothing hidden: the same profile');
  });
});
